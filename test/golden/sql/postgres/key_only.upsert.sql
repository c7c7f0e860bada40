INSERT INTO "public"."tags" ("tag") VALUES (:p1::text),(:p2::text) ON CONFLICT ("tag") DO NOTHING
