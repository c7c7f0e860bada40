DELETE FROM "migration_schema"."Order Lines" WHERE ("order_id","line") IN ((:p1::uuid,:p2::smallint),(:p3::uuid,:p4::smallint))
