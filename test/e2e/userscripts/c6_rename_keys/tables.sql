CREATE TABLE pairs (id1 VARCHAR(8), id2 VARCHAR(8), name VARCHAR(32), PRIMARY KEY (id1, id2));
INSERT INTO pairs VALUES ('x', 'y', 'doomed'), ('u', 'v', 'doomed too');
