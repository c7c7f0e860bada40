// API reference, schema-level handlers (A1 and A2): status upper-cased on orders, upserts of
// tables other than orders and customers dropped; deletes of items with id < 100 skipped.
import * as api from "replicator@v2";

const TARGET_SCHEMA_NAME = "@SCHEMA@";

api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => {
    if (meta.table === "orders") {
      row.status = row.status.toUpperCase();
      return row;
    }
    if (meta.table === "customers") {
      return row;
    }
    return null;
  },
  onRowDelete: (row, meta) => {
    if (meta.table === "items" && Number(row.id) < 100) {
      return null;
    }
    return row;
  },
});
