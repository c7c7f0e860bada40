CREATE TABLE m (pk BIGINT PRIMARY KEY, version BIGINT, val BIGINT, note VARCHAR(32));
INSERT INTO m VALUES (1, 5, 40, 'target'), (2, 5, 10, 'old'), (3, 5, 0, 'replaced');
CREATE TABLE ml (pk BIGINT PRIMARY KEY, version BIGINT, note VARCHAR(32));
INSERT INTO ml VALUES (1, 5, 'target');
CREATE TABLE md (pk BIGINT PRIMARY KEY, version BIGINT, note VARCHAR(32));
INSERT INTO md VALUES (1, 5, 'target');
CREATE TABLE mx (pk BIGINT PRIMARY KEY, version BIGINT, note VARCHAR(32));
INSERT INTO mx VALUES (1, 5, 'target');
CREATE TABLE replicator_dlq (event SERIAL PRIMARY KEY, dlq_name VARCHAR(256) NOT NULL, source_nanos BIGINT NOT NULL, source_logical BIGINT NOT NULL, data_after TEXT NOT NULL, data_before TEXT NOT NULL);
