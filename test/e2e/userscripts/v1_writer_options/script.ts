// replicator@v1 configureTable's options for the built-in writer: rowLimit (rows per statement),
// extras (the properties the table has no column for, as a JSON object in one column) and exprs
// (SQL around the value, $0; on a key column deletes use it too; an expression without $0 is
// written by every upsert).
import * as api from "replicator@v1";

api.configureTable("w", {
  rowLimit: 1,
  extras: "more",
  exprs: { pk: "$0 + 100", label: "concat($0, '!')", src: "'script'" },
});
