DELETE FROM "public"."employees" WHERE ("id") IN (SELECT * FROM unnest(:p1::bigint[]))
