INSERT INTO `molt`.`order``lines` (`order_id`,`line`,`qty`) VALUES (:p1,:p2,:p3),(:p4,:p5,:p6) ON DUPLICATE KEY UPDATE `order_id`=VALUES(`order_id`),`line`=VALUES(`line`),`qty`=VALUES(`qty`)
