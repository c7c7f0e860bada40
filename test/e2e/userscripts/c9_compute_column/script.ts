// Cookbook "Compute new columns" (C9): total = price * qty, as a string with two decimals.
import * as api from "replicator@v2";

const TARGET_SCHEMA_NAME = "@SCHEMA@";
const TABLE_TO_COMPUTE = "orders";

api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => {
    if (meta.table === TABLE_TO_COMPUTE) {
      const price = Number(row.price) || 0;
      const qty = Number(row.qty) || 0;
      row.total = (price * qty).toFixed(2);
    }
    return row;
  },
  onRowDelete: (row, meta) => row,
});
