// Cookbook: implement a dead-letter queue (C11). A batch the target refuses for a NULL in a NOT
// NULL column is written again row by row, each in a savepoint; the refused row goes to the DLQ
// table with the error, in the same transaction. The error text is the target's: "SQLSTATE
// 23502" on PostgreSQL, "MySQL error 1048" on MariaDB (@DB@ is pg or my); so are placeholders
// ($1 or ?) and name quoting.
import * as api from "replicator@v2";

const TARGET_SCHEMA_NAME = "@SCHEMA@";
const POSTGRES = "@DB@" === "pg";
const NOT_NULL = POSTGRES ? "SQLSTATE 23502" : "MySQL error 1048";
const DLQ_TABLE = `${TARGET_SCHEMA_NAME}.dlq`;
const TABLES_WITH_DLQ = ["items"];
const Q = POSTGRES ? '"' : "`";
const DLQ = DLQ_TABLE.split(".").map((part) => `${Q}${part}${Q}`).join(".");
const INSERT_DLQ = `INSERT INTO ${DLQ} (stmt, err) VALUES ${POSTGRES ? "($1, $2)" : "(?, ?)"}`;

api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => row,
  onRowDelete: (row, meta) => row,
});

api.configureTargetTables(TABLES_WITH_DLQ, {
  onWrite: async (rows) => {
    const tx = api.getTX();
    await tx.exec("SAVEPOINT dlq_checkpoint");
    try {
      await api.write(rows);
    } catch (e) {
      if (!e.toString().includes(NOT_NULL)) {
        throw e;
      }
      await tx.exec("ROLLBACK TO SAVEPOINT dlq_checkpoint");
      for (const row of rows) {
        await tx.exec("SAVEPOINT dlq_row");
        try {
          await api.write([row]);
        } catch (err) {
          if (!err.toString().includes(NOT_NULL)) {
            throw err;
          }
          await tx.exec("ROLLBACK TO SAVEPOINT dlq_row");
          await tx.exec(INSERT_DLQ, JSON.stringify(row), err.toString());
        }
      }
    }
  },
});
