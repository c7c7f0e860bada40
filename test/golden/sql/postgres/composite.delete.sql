DELETE FROM "migration_schema"."Order Lines" WHERE ("order_id","line") IN (($1::uuid,$2::smallint),($3::uuid,$4::smallint))
