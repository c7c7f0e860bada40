// replicator@v1 apply (the v1 vectors soft_deletes and uniquer, through the legacy module name):
// a delete of soft, which carries its row before (WITH diff), is written as that row with
// is_deleted 1; uniq's rows are written one by one, each in a savepoint, and one that breaks
// the unique index goes to the table dlq as its operation's JSON. (Key 2 exists: MySQL's
// ON DUPLICATE KEY UPDATE would take a conflict on val alone as key 1's row.) @DB@ is pg or my.
import * as api from "cdc-sink@v1";

const PG = "@DB@" === "pg";

api.configureTable("soft", {
  apply: async (ops) =>
    api.getTX().apply(
      ops.map((op) => (op.action === "delete" ? { ...op, action: "upsert", data: { ...op.before, is_deleted: 1 } } : op)),
    ),
});
api.configureTable("uniq", {
  apply: async (ops) => {
    const tx = api.getTX();
    for (const op of ops) {
      await tx.exec("SAVEPOINT uniquer");
      try {
        await tx.apply([op]);
      } catch (e) {
        await tx.exec("ROLLBACK TO SAVEPOINT uniquer");
        await tx.exec(PG ? "INSERT INTO dlq (data) VALUES ($1)" : "INSERT INTO dlq (data) VALUES (?)", JSON.stringify(op));
      }
    }
  },
});
