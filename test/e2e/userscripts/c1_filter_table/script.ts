// Cookbook "Filter a single table" (C1): audit_logs is not replicated.
import * as api from "replicator@v2";

const TARGET_SCHEMA_NAME = "@SCHEMA@";
const TABLE_TO_SKIP = "audit_logs";

api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => {
    if (meta.table === TABLE_TO_SKIP) {
      return null;
    }
    return row;
  },
  onRowDelete: (row, meta) => {
    if (meta.table === TABLE_TO_SKIP) {
      return null;
    }
    return row;
  },
});
