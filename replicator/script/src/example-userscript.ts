// An example userscript: replicate everything but audit_logs, and keep the ssn column of
// customers on the source.
import * as api from "replicator@v2";

const TARGET_SCHEMA_NAME = "defaultdb.public"; // "defaultdb" for a MySQL target

api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => {
    if (meta.table === "audit_logs") {
      return null;
    }
    if (meta.table === "customers") {
      delete row.ssn;
    }
    return row;
  },
  onRowDelete: (row, meta) => (meta.table === "audit_logs" ? null : row),
});
