MERGE INTO "schema"."table" USING (
WITH data ("pk0","pk1","val1") AS (
SELECT ?, CAST(? AS NUMBER(10)), CAST(? AS NUMBER(12,2)) FROM DUAL
)
SELECT * FROM data) x ON ("schema"."table"."pk0" = x."pk0" AND "schema"."table"."pk1" = x."pk1")
WHEN NOT MATCHED THEN INSERT ("pk0","pk1","val1") VALUES (x."pk0", x."pk1", x."val1")
WHEN MATCHED THEN UPDATE SET "val1" = x."val1"
