INSERT INTO "public"."employees" ("id","salary") SELECT * FROM unnest(:p1::bigint[],:p2::numeric(12,2)[]) ON CONFLICT ("id") DO UPDATE SET ("salary") = ROW(excluded."salary")
