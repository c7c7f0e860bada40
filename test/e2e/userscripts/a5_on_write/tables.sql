CREATE TABLE customers (id INT PRIMARY KEY, num_orders INT);
CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT, total VARCHAR(16));
INSERT INTO customers (id, num_orders) VALUES (7, NULL), (8, 2);
INSERT INTO orders (id, customer_id, total) VALUES (50, 7, 'old');
