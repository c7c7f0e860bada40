CREATE TABLE table1 (msg BOOLEAN PRIMARY KEY, dest VARCHAR(32));
INSERT INTO table1 VALUES (false, 'pre');
CREATE TABLE table2 (idx BIGINT PRIMARY KEY, dest VARCHAR(32), msg BOOLEAN);
INSERT INTO table2 VALUES (42, 'pre', false);
CREATE TABLE partitioned_target (id BIGINT PRIMARY KEY);
INSERT INTO partitioned_target VALUES (9);
