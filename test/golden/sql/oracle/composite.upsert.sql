MERGE INTO "MIGRATION_SCHEMA"."Order Lines" USING (
WITH data ("placed","order id","line","qty","note","span","ratio","blob","local") AS (
SELECT TO_DATE(?, 'YYYY-MM-DD HH24:MI:SS'), HEXTORAW(?), CAST(? AS NUMBER(5)), CAST(? AS NUMBER(10)), ?, TO_YMINTERVAL(?), TO_BINARY_FLOAT(?), TO_BLOB(HEXTORAW(?)), TO_TIMESTAMP_TZ(?, 'YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM') FROM DUAL
)
SELECT * FROM data) x ON ("MIGRATION_SCHEMA"."Order Lines"."placed" = x."placed" AND "MIGRATION_SCHEMA"."Order Lines"."order id" = x."order id" AND "MIGRATION_SCHEMA"."Order Lines"."line" = x."line")
WHEN NOT MATCHED THEN INSERT ("placed","order id","line","qty","note","span","ratio","blob","local") VALUES (x."placed", x."order id", x."line", x."qty", x."note", x."span", x."ratio", x."blob", x."local")
WHEN MATCHED THEN UPDATE SET "qty" = x."qty", "note" = x."note", "span" = x."span", "ratio" = x."ratio", "blob" = x."blob", "local" = x."local"
