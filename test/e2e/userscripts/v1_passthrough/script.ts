// replicator@v1 configureSource with a target (the v1 vector passthrough): every table's rows go
// to some_table unchanged, upserts and deletes.
import * as api from "replicator@v1";

api.configureSource("@SCHEMA@", { target: "some_table" });
