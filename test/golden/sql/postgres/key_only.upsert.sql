INSERT INTO "public"."tags" ("tag") VALUES ($1::text),($2::text) ON CONFLICT ("tag") DO NOTHING
