// Cookbook "Rename tables" (C8): customer_table is CUSTOMERS on the target.
import * as api from "replicator@v2";

const TARGET_SCHEMA_NAME = "@SCHEMA@";
const TABLE_MAPPINGS: Record<string, string> = {
  customer_table: "CUSTOMERS",
};

function rename(row, meta) {
  if (meta.table in TABLE_MAPPINGS) {
    return { [TABLE_MAPPINGS[meta.table]]: [row] };
  }
  return row;
}

api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: rename,
  onRowDelete: rename,
});
