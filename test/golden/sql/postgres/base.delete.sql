DELETE FROM "public"."employees" WHERE ("id") IN ((:p1::bigint),(:p2::bigint))
