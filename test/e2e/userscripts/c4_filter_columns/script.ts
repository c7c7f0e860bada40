// Cookbook "Filter columns" (C4): the target's items has no qty column.
import * as api from "replicator@v2";

const TARGET_SCHEMA_NAME = "@SCHEMA@";
const TABLE_TO_EDIT = "items";

api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => {
    if (meta.table === TABLE_TO_EDIT) {
      delete row["qty"];
    }
    return row;
  },
  onRowDelete: (row, meta) => row,
});
