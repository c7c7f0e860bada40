DELETE FROM "schema"."table" WHERE ("pk0","pk1")IN((:1,CAST(:2 AS NUMBER(10))))
