// replicator@v1 configureTable's handlers (the v1 vectors all_features, delete_elide,
// delete_swap and drop_all): map replaces a row, here with text imported from ./data.txt, and
// an expression takes its text from ./lib; deleteKey returning null drops a delete, one
// returning a new key deletes that key instead; map returning null drops the upsert.
import * as api from "replicator@v1";
import data from "./data.txt";
import { libraryText } from "./lib";

api.configureTable("features", {
  map: (doc) => ({ ...doc, msg: data.trim(), num: 42 }),
  exprs: { expr1: `'${libraryText}'` },
});
api.configureTable("elide", { deleteKey: () => null });
api.configureTable("pairs", { deleteKey: (key) => [key[1], key[0]] });
api.configureTable("dropped", { map: () => null });
