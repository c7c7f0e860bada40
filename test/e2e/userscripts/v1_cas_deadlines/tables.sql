CREATE TABLE c (pk BIGINT PRIMARY KEY, version BIGINT, ts TIMESTAMP NULL, note VARCHAR(32));
INSERT INTO c (pk, version, note) VALUES (1, 5, 'kept'), (2, 5, 'replaced'), (3, 5, 'equal'), (5, 0, 'deleted'), (7, 9007199254740992, 'replaced');
CREATE TABLE d (pk BIGINT PRIMARY KEY, ts TIMESTAMP NULL);
