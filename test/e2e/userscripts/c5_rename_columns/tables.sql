CREATE TABLE employees (employee_id INT PRIMARY KEY, employee_name VARCHAR(32), department VARCHAR(32));
INSERT INTO employees VALUES (8, 'Bob', 'IT'), (9, 'Cy', 'IT');
