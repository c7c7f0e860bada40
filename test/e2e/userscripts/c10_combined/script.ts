// Cookbook "Combine multiple transforms" (C10): on customers, rows marked deleted are skipped and
// the ssn and credit_card_number columns dropped; other tables keep theirs.
import * as api from "replicator@v2";

const TARGET_SCHEMA_NAME = "@SCHEMA@";
const TABLE_TO_EDIT = "customers";
const COLUMNS_TO_DROP = ["ssn", "credit_card_number"];

api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => {
    if (meta.table !== TABLE_TO_EDIT) {
      return row;
    }
    if (Number(row.is_deleted) === 1) {
      return null;
    }
    const out = { ...row };
    for (const column of COLUMNS_TO_DROP) {
      delete out[column];
    }
    return out;
  },
  onRowDelete: (row, meta) => row,
});
