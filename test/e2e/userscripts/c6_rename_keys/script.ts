// Cookbook "Rename primary keys" (C6): pk1, pk2 are id1, id2 on the target.
import * as api from "replicator@v2";

const TARGET_SCHEMA_NAME = "@SCHEMA@";
const TABLE_TO_EDIT = "pairs";

api.configureTargetSchema(TARGET_SCHEMA_NAME, {
  onRowUpsert: (row, meta) => {
    if (meta.table === TABLE_TO_EDIT) {
      row.id1 = row.pk1;
      row.id2 = row.pk2;
      delete row.pk1;
      delete row.pk2;
    }
    return row;
  },
  onRowDelete: (row, meta) => {
    // onRowDelete ignores extra columns: the old names may stay.
    if (row.pk1 !== undefined) {
      row.id1 = row.pk1;
    }
    if (row.pk2 !== undefined) {
      row.id2 = row.pk2;
    }
    return row;
  },
});
