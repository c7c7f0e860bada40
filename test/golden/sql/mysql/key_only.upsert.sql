INSERT INTO `molt`.`tags` (`tag`) VALUES (:p1) ON DUPLICATE KEY UPDATE `tag`=VALUES(`tag`)
