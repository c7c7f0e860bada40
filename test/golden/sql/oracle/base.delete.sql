DELETE FROM "schema"."table" WHERE ("pk0","pk1")IN((?,CAST(? AS NUMBER(10))))
