// Cookbook "Select data to replicate" (C3): rows marked deleted on the source are not replicated.
import * as api from "replicator@v2";

const TARGET_SCHEMA_NAME = "@SCHEMA@";

api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => {
    if (row.is_deleted !== undefined && Number(row.is_deleted) === 1) {
      return null;
    }
    return row;
  },
  onRowDelete: (row, meta) => row,
});
