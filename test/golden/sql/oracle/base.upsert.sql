MERGE INTO "schema"."table" USING (
WITH data ("pk0","pk1","val0","val1","at","day","wall","id","doc","wait","ratio") AS (
SELECT :1, CAST(:2 AS NUMBER(10)), :3, CAST(:4 AS NUMBER(12,2)), TO_TIMESTAMP_TZ(:5, 'YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM'), TO_DATE(:6, 'YYYY-MM-DD HH24:MI:SS'), TO_TIMESTAMP(:7, 'YYYY-MM-DD HH24:MI:SS.FF9'), HEXTORAW(:8), TO_CLOB(:9), TO_DSINTERVAL(:10), TO_BINARY_DOUBLE(:11) FROM DUAL
)
SELECT * FROM data) x ON ("schema"."table"."pk0" = x."pk0" AND "schema"."table"."pk1" = x."pk1")
WHEN NOT MATCHED THEN INSERT ("pk0","pk1","val0","val1","at","day","wall","id","doc","wait","ratio") VALUES (x."pk0", x."pk1", x."val0", x."val1", x."at", x."day", x."wall", x."id", x."doc", x."wait", x."ratio")
WHEN MATCHED THEN UPDATE SET "val0" = x."val0", "val1" = x."val1", "at" = x."at", "day" = x."day", "wall" = x."wall", "id" = x."id", "doc" = x."doc", "wait" = x."wait", "ratio" = x."ratio"
