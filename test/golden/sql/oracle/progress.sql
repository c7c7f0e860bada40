BEGIN EXECUTE IMMEDIATE 'CREATE TABLE "MIGRATION_SCHEMA"."_replicator_progress" (first_nanos NUMBER(19) NOT NULL, first_logical NUMBER(10) NOT NULL, last_nanos NUMBER(19) NOT NULL, last_logical NUMBER(10) NOT NULL, applied_at TIMESTAMP(6) DEFAULT SYSTIMESTAMP NOT NULL, PRIMARY KEY (last_nanos, last_logical))'; EXCEPTION WHEN OTHERS THEN IF SQLCODE <> -955 THEN RAISE; END IF; END;
INSERT INTO "MIGRATION_SCHEMA"."_replicator_progress" (first_nanos, first_logical, last_nanos, last_logical) VALUES (?, ?, ?, ?)
SELECT 1 FROM "MIGRATION_SCHEMA"."_replicator_progress" WHERE last_nanos = ? AND last_logical = ?
SELECT TO_CHAR(first_nanos), TO_CHAR(first_logical), TO_CHAR(last_nanos), TO_CHAR(last_logical) FROM "MIGRATION_SCHEMA"."_replicator_progress" ORDER BY last_nanos, last_logical
DELETE FROM "MIGRATION_SCHEMA"."_replicator_progress"
