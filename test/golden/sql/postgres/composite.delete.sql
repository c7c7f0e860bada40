DELETE FROM "migration_schema"."Order Lines" WHERE ("order_id","line") IN (SELECT * FROM unnest(:p1::uuid[],:p2::smallint[]))
