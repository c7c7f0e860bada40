DELETE FROM "MIGRATION_SCHEMA"."Order Lines" WHERE ("placed","order id","line")IN((TO_DATE(?, 'YYYY-MM-DD HH24:MI:SS'),HEXTORAW(?),CAST(? AS NUMBER(5))))
