DELETE FROM "public"."employees" WHERE ("id") IN (($1::bigint),($2::bigint))
