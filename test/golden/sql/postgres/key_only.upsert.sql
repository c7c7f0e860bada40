INSERT INTO "public"."tags" ("tag") SELECT * FROM unnest(:p1::text[]) ON CONFLICT ("tag") DO NOTHING
