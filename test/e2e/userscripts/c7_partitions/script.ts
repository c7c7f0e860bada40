// Cookbook "Route table partitions" (C7): items rows go to tbl1, tbl2 or tbl3 by id.
import * as api from "replicator@v2";

const TARGET_SCHEMA_NAME = "@SCHEMA@";
const TABLE_TO_PARTITION = "items";

function partition(row, meta) {
  if (meta.table !== TABLE_TO_PARTITION) {
    return row;
  }
  const id = Number(row.id);
  if (id <= 10000) {
    return { tbl1: [row] };
  } else if (id <= 20000) {
    return { tbl2: [row] };
  }
  return { tbl3: [row] };
}

api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: partition,
  onRowDelete: partition,
});
