CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(32));
CREATE TABLE audit_logs (id INT PRIMARY KEY, msg VARCHAR(32));
INSERT INTO audit_logs VALUES (9, 'kept');
INSERT INTO items VALUES (2, 'doomed');
