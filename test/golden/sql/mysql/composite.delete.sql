DELETE FROM `molt`.`order``lines` WHERE (`order_id`,`line`) IN ((:p1,:p2),(:p3,:p4))
