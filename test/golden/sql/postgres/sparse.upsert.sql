INSERT INTO "public"."employees" ("id","salary") VALUES ($1::bigint,$2::numeric(12,2)) ON CONFLICT ("id") DO UPDATE SET ("salary") = ROW(excluded."salary")
