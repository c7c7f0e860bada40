// API reference, onWrite (A5): an order is written only when its customer exists, and the
// customer's order count goes up in the same transaction. Placeholders are the target's ($1 on
// PostgreSQL, ? on MariaDB; @DB@ is pg or my).
import * as api from "replicator@v2";

const P = "@DB@" === "pg" ? "$1" : "?";

api.configureTargetTables(["orders"], {
  onWrite: async (rows) => {
    const tx = api.getTX();
    for (const row of rows) {
      if (row.action === "delete") {
        await api.write([row]);
        continue;
      }
      const customerId = row.data.customer_id;
      const result = await tx.query(`SELECT id FROM @SCHEMA@.customers WHERE id = ${P}`, customerId);
      const found = [...result];
      if (found.length === 0) {
        console.warn("Skipping order: missing customer_id", customerId);
        continue;
      }
      await api.write([row]);
      await tx.exec(
        `UPDATE @SCHEMA@.customers SET num_orders = COALESCE(num_orders, 0) + 1 WHERE id = ${P}`,
        customerId,
      );
    }
  },
});
