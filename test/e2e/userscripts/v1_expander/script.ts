// replicator@v1 configureSource with dispatch and deletesTo functions (the v1 vectors expander,
// partitioned and a delete of a table the target lacks): the expander's row becomes one row of
// table1 and two of table2; a partition's rows go to partitioned_target unchanged, with meta as
// v1 gives it; deletesTo gets the key as a document of the table's key columns (table1's msg),
// or {__REPLICATION_KEY__: key} for a table the target lacks, and its tables' rows are deleted.
import * as api from "replicator@v1";

api.configureSource("@SCHEMA@", {
  dispatch: (doc, meta) => {
    if (/^partitioned_target_[0-9]+$/.test(meta.table)) {
      if (meta["@SCHEMA@"] !== true || meta.nanos !== "1000000000000000001" || meta.logical !== 0) {
        throw new Error("unexpected meta " + JSON.stringify(meta));
      }
      return { partitioned_target: [doc] };
    }
    return {
      table1: [{ dest: "table1", msg: doc.msg }],
      table2: [
        { dest: "table2", idx: 0, msg: doc.msg },
        { dest: "table2", idx: 1, msg: doc.msg },
      ],
    };
  },
  deletesTo: (doc, meta) => {
    if (meta.table === "not_in_target_schema") {
      if (JSON.stringify(doc) !== '{"__REPLICATION_KEY__":["k9"]}') throw new Error("unexpected key " + JSON.stringify(doc));
      return { partitioned_target: [{ id: 9 }] };
    }
    return { table1: [doc], table2: [{ idx: 42 }] };
  },
});
