// replicator@v1 configureTable's merge: the rows cas does not write (the target's version is not
// older) go to the merge. m: standardMerge takes the columns only the batch changed (note of
// key 2) and hands the columns both sides changed to its fallback, which adds the batch's change
// of val to the target's (before 1, proposed 3, target 40: 42). ml: a literal result is written
// over the proposed row (me: with its extras column's object). md: every conflict goes to the
// dead-letter queue "dead"; mx: dropped.
// Rows that win their cas comparison are written without a merge.
import * as api from "replicator@v1";

api.configureTable("m", {
  cas: ["version"],
  merge: api.standardMerge((op) => ({
    apply: { ...op.target, val: Number(op.target.val) + Number(op.proposed.val) - Number(op.before!.val) },
  })),
});
api.configureTable("ml", { cas: ["version"], merge: () => ({ apply: { note: "merged" } }) });
api.configureTable("md", { cas: ["version"], merge: () => ({ dlq: "dead" }) });
api.configureTable("mx", { cas: ["version"], merge: () => ({ drop: true }) });
api.configureTable("me", { cas: ["version"], extras: "more", merge: () => ({ apply: { note: "merged" } }) });
