CREATE TABLE orders (id INT, region_code VARCHAR(8), status_code VARCHAR(8), status_description VARCHAR(32), replicated_at VARCHAR(32), PRIMARY KEY (id, region_code));
INSERT INTO orders (id, region_code) VALUES (123, 'US'), (124, 'EU'), (1000, 'US');
