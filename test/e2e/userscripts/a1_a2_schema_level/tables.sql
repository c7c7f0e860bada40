CREATE TABLE orders (id INT PRIMARY KEY, status VARCHAR(16));
CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(16));
CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(16));
INSERT INTO items VALUES (5, 'kept'), (150, 'doomed');
