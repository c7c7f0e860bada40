// The userscript APIs of this replicator (`replicator userscript --api`): replicator@v2, and what
// it serves of replicator@v1. Import one with: import * as api from "replicator@v2";
// Types are stripped, never checked: a script that does not type-check still runs.
declare module "replicator@v2" {
  /** Every number arrives as a string (its exact text): parse it, and return a string or a number. */
  type RowValue = string | number | boolean | null | Row | Array<RowValue>;
  type Row = { [column: string]: RowValue };
  /** schema: the target schema as the webhook path names it ("db.public", or "db" on MySQL).
   *  table: the changefeed's table (schema level) or the target table (table level). */
  type Metadata = { schema: string; table: string };

  /** Return the row (changed or not), null to skip it, or { table: [rows] } to route it. */
  type RowHandlerFn = (row: Row, metadata: Metadata) => Row | Record<string, Row[]> | null;

  /** Handlers for the rows of one target schema, run in the request, before staging. Both are
   *  required; names are matched ignoring ASCII case. */
  function configureTargetSchema(
    targetSchemaName: string,
    handlers: { onRowUpsert: RowHandlerFn; onRowDelete: RowHandlerFn },
  ): void;

  /** keyVals: the primary key's values as strings, in key order; return them (changed or not)
   *  or null to skip the delete. */
  type onRowUpsertFn = (row: Row, meta: Metadata) => Row | null;
  type onRowDeleteFn = (keyVals: string[], meta: Metadata) => string[] | null;

  /** A row to write: an upsert with the row's data, or a delete; pk holds the primary key's
   *  values as strings; before, when the changefeed sends it (WITH diff). */
  type RowOp = ({ action: "delete" } | { action: "upsert"; data: Row }) & {
    before?: Row | null;
    meta: Metadata;
    pk: string[];
  };
  /** Replaces the built-in write of a table's rows: it runs in the target transaction, after
   *  the batch's other tables, and what it does not write (api.write) is not written. Nothing
   *  commits before its promise resolves; a rejection fails the batch. */
  type onWriteFn = (rows: RowOp[]) => Promise<any>;

  /** Handlers for target tables ("table" in any schema, or "schema.table"), run when rows are
   *  applied (in the request with --immediate). A missing row handler passes rows through. */
  function configureTargetTables(
    tables: string[],
    configuration: { onRowUpsert?: onRowUpsertFn; onRowDelete?: onRowDeleteFn; onWrite?: onWriteFn },
  ): void;

  /** Inside onWrite: the target transaction. Placeholders are the target's: $1, $2 … on
   *  PostgreSQL, ? on MySQL and MariaDB; parameters are bound as text. query() resolves to
   *  the rows, each an array of values as text (null: NULL). A failed statement rejects with
   *  the database's message ("… (SQLSTATE 23502)" on PostgreSQL, "… (MySQL error 1048)" on
   *  MySQL and MariaDB); on PostgreSQL, roll back to a savepoint before going on. */
  type TargetTX = {
    query(sql: string, ...params: any[]): Promise<Array<Array<string | null>>>;
    exec(sql: string, ...params: any[]): Promise<void>;
    /** The table's columns, primary key first; ignored: generated (never written). */
    columns(): { name: string; primary: boolean; type: string; ignored: boolean; defaultExpr?: string }[];
    /** The schema and the table, quoted for the target. */
    schema(): string;
    table(): string;
  };
  /** Only inside onWrite. */
  function getTX(): TargetTX;
  /** Only inside onWrite: writes rows with the built-in statements, in the transaction. */
  function write(rows: RowOp[]): Promise<void>;
}

/** The older API (also imported as "cdc-sink@v1"), as far as this replicator serves it: sources,
 *  the row functions of tables, the built-in writer's options (rowLimit, extras, exprs, cas,
 *  deadlines, merge), apply and setOptions. */
declare module "replicator@v1" {
  /** "__REPLICATION_KEY__": a document that is exactly { [replicationKey]: [key…] } passes a
   *  delete's key on to another table. */
  const replicationKey: string;
  type Table = string; // "t", "schema.t" or "db.schema.t"; parts may be double-quoted
  type Column = string;
  type Document = { [x: string]: DocumentValue };
  type DocumentValue = null | boolean | number | string | Document | Array<DocumentValue>;
  /** sourceName: the target schema, as for configureTargetSchema. dispatch and deletesTo run in
   *  the request, before staging; meta is { [sourceName]: true, schema, table, nanos (string),
   *  logical, before }. */
  function configureSource(
    sourceName: string,
    props:
      | {
          dispatch: (doc: Document, meta: Document) => Record<Table, Document[]> | null;
          deletesTo: Table | ((doc: Document, meta: Document) => Record<Table, Document[]> | null);
        }
      | { target: Table },
  ): void;
  type ApplyOp = ({ action: "delete" } | { action: "upsert"; data: Document }) & {
    before: Document | null;
    meta: null;
    pk: DocumentValue[];
  };
  /** map and deleteKey run when rows are applied; ignore drops columns from what is written;
   *  apply replaces the built-in write, as replicator@v2's onWrite (getTX().apply(ops) is the
   *  built-in write). For the built-in write: rowLimit, the most rows per statement (instead of
   *  --flushSize); extras, a JSON column that takes the properties the table has no column for
   *  (as one object; {} when none); exprs, SQL for a column's value where $0 is the value (of
   *  the column's type on PostgreSQL), also in deletes for key columns, and without $0 written
   *  by every upsert; cas, an upsert is written only when the target has no row of its key or
   *  these columns compare greater than the target row's; deadlines, only when each column is
   *  later than now() less its duration ("1h", "90s"). Rows that lose are dropped; with merge (and
   *  cas), those cas does not write go to it with the target's row: a MergeResult applies a row
   *  (written over the proposed one, unconditionally), sends the proposed row to a dead-letter
   *  queue of --dlqTableName (dlq_name = its name), or drops it. standardMerge() takes the
   *  columns only the batch changed (before → proposed) over the target's row and hands those
   *  both changed to its fallback as unmerged (no fallback: the batch fails). */
  function configureTable(
    tableName: Table,
    props: Partial<{
      map: (doc: Document, meta: Document) => Document | null;
      deleteKey: (key: DocumentValue[], meta: Document) => DocumentValue[] | null;
      ignore: { [k: Column]: boolean };
      rowLimit: number;
      extras: Column;
      exprs: { [k: Column]: string };
      cas: Column[];
      deadlines: { [k: Column]: string };
      merge: MergeFunction | StandardMerge;
      apply: (ops: ApplyOp[]) => Promise<any>;
    }>,
  ): void;
  /** Numbers come as strings (before and proposed as sent; target as the database has them);
   *  meta is {}. */
  type MergeFunction = (op: {
    before?: Document;
    meta: Document;
    proposed: Document;
    target: Document;
    unmerged?: Column[];
  }) => MergeResult;
  type MergeResult = { apply: Document } | { dlq: string } | { drop: true };
  type StandardMerge = {};
  function standardMerge(fallback?: MergeFunction): StandardMerge;
  /** Only inside apply: replicator@v2's TargetTX, and apply(ops), the built-in write. */
  function getTX(): {
    query(sql: string, ...params: any[]): Promise<Array<Array<string | null>>>;
    exec(sql: string, ...params: any[]): Promise<void>;
    apply(ops: ApplyOp[]): Promise<void>;
    columns(): { name: string; primary: boolean; type: string; ignored: boolean; defaultExpr?: string }[];
    schema(): string;
    table(): string;
  };
  function randomUUID(): string;
  /** While the script loads: sets flags of replicator start by name, over the command line's
   *  ({ flushSize: "500" }); an unknown name fails the start. */
  function setOptions(opts: { [k: string]: string | number | boolean }): void;
}

/** Script output goes to the replicator's log: log and info at info, debug with -v, trace with
 *  -vv, warn, error. disable() and enable() switch all of it. */
declare var console: Record<"log" | "info" | "debug" | "trace" | "warn" | "error",
                            (...args: any[]) => void> & { disable(): void; enable(): void };
