// The v1 sequencer vector: dispatch sends source table t_1's rows to "T_1", which names table
// t_1 (names ignore case), and map on T_1 sets v to "cowbell"; t_2's map adds more_stuff, which
// its extras column keeps, and its apply sets v to "llebwoc" before the built-in write
// (getTX().apply). 100 upserts of each table land; 100 deletes, which deletesTo sends to T_1,
// empty t_1; a later upsert shows the map again.
import * as api from "replicator@v1";

api.configureSource("@SCHEMA@", {
  dispatch: (doc, meta) => ({ [meta.table === "t_1" ? "T_1" : meta.table]: [doc] }),
  deletesTo: "T_1",
});
api.configureTable("T_1", { map: (doc) => ({ ...doc, v: "cowbell" }) });
api.configureTable("t_2", {
  map: (doc) => ({ ...doc, more_stuff: "stuff " + doc.pk }),
  extras: "xtra",
  apply: async (ops) =>
    api.getTX().apply(ops.map((op) => (op.action === "upsert" ? { ...op, data: { ...op.data, v: "llebwoc" } } : op))),
});
