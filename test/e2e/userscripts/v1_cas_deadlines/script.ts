// replicator@v1 configureTable's cas and deadlines: an upsert of c is written only when the
// target has no row of its key or its version is greater than the target row's (exactly, past
// 2^53), and only when its ts is later than an hour ago; of d, when its ts is later than 50
// years ago; the others are dropped. Deletes are unconditional.
import * as api from "replicator@v1";

api.configureTable("c", { cas: ["version"], deadlines: { ts: "1h" } });
api.configureTable("d", { deadlines: { ts: "438000h" } });
