MERGE INTO "schema"."table" USING (
WITH data ("pk0","pk1","val0","val1","at","day","wall","id","doc","wait","ratio") AS (
SELECT ?, CAST(? AS NUMBER(10)), ?, CAST(? AS NUMBER(12,2)), TO_TIMESTAMP_TZ(?, 'YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM'), TO_DATE(?, 'YYYY-MM-DD HH24:MI:SS'), TO_TIMESTAMP(?, 'YYYY-MM-DD HH24:MI:SS.FF9'), HEXTORAW(?), TO_CLOB(?), TO_DSINTERVAL(?), TO_BINARY_DOUBLE(?) FROM DUAL
)
SELECT * FROM data) x ON ("schema"."table"."pk0" = x."pk0" AND "schema"."table"."pk1" = x."pk1")
WHEN NOT MATCHED THEN INSERT ("pk0","pk1","val0","val1","at","day","wall","id","doc","wait","ratio") VALUES (x."pk0", x."pk1", x."val0", x."val1", x."at", x."day", x."wall", x."id", x."doc", x."wait", x."ratio")
WHEN MATCHED THEN UPDATE SET "val0" = x."val0", "val1" = x."val1", "at" = x."at", "day" = x."day", "wall" = x."wall", "id" = x."id", "doc" = x."doc", "wait" = x."wait", "ratio" = x."ratio"
