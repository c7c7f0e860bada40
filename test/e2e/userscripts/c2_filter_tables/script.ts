// Cookbook "Filter multiple tables" (C2): neither audit_logs nor sessions is replicated.
import * as api from "replicator@v2";

const TARGET_SCHEMA_NAME = "@SCHEMA@";
const TABLES_TO_SKIP = new Set(["audit_logs", "sessions"]);

api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => {
    if (TABLES_TO_SKIP.has(meta.table)) {
      return null;
    }
    return row;
  },
  onRowDelete: (row, meta) => {
    if (TABLES_TO_SKIP.has(meta.table)) {
      return null;
    }
    return row;
  },
});
