// replicator@v1 apply with getTX() (the v1 vectors sql_test and soft deletes' shape): each upsert
// {pk: n, val: v} is written as (2n, -2v) with the INT8 a query returns, exact; a statement that
// would end the transaction is refused (its first word kept in note); placeholders out of order
// and used twice (PostgreSQL), or in turn (MariaDB). @DB@ is pg or my.
import * as api from "replicator@v1";

const PG = "@DB@" === "pg";

api.configureTable("t", {
  apply: async (ops) => {
    const tx = api.getTX();
    const [[big]] = [...(await tx.query(PG ? "SELECT (1::INT8 << 60)" : "SELECT CAST(1 << 60 AS SIGNED)"))];
    let refused = "";
    try {
      await tx.exec("COMMIT");
    } catch (e) {
      refused = e.message.split(" ")[0];
    }
    await tx.apply(
      ops.map((op) =>
        op.action === "upsert"
          ? { ...op, data: { pk: String(2 * Number(op.data.pk)), val: String(-2 * Number(op.data.val)), big, note: refused } }
          : op,
      ),
    );
    for (const op of ops) {
      if (op.action !== "upsert") continue;
      const pk = String(2 * Number(op.data.pk));
      if (PG) {
        await tx.exec("UPDATE t SET note = note || $2 WHERE pk = $1 AND pk <= $1", pk, ":" + op.data.pk);
      } else {
        await tx.exec("UPDATE t SET note = CONCAT(note, ?) WHERE pk = ? AND pk <= ?", ":" + op.data.pk, pk, pk);
      }
    }
  },
});
