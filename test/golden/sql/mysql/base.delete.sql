DELETE FROM `molt`.`employees` WHERE (`id`) IN ((:p1),(:p2))
