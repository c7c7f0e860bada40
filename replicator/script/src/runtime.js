// The JavaScript half of the userscript host (userscript.cpp is the other): the module loader,
// the replicator@v2 and @v1 APIs, and the row loop of each phase. Evaluated once, in strict mode, as a
// function of `host`, the natives the C++ side gives it:
//   host.compile(path)       -> {fn, map}: the module at `path` (relative to the script's
//                               folder) stripped of types by esbuild and compiled as
//                               function (exports, require, module); `map` its source map (JSON)
//                               or ""; throws with esbuild's message
//   host.log(level, text)    console output at a log level (0 trace … 4 error)
//   host.levels              the lowest level the log writes (0 … 4)
//   host.tick()              restarts the per-call limits before a handler runs
//   host.uuid()              a random version 4 UUID (replicator@v1 randomUUID)
// It returns {load, describe, run, current, failed}. Nothing of it is reachable from a script but
// the API modules.
(function (host) {
  "use strict";

  // Source maps: where a position of esbuild's output came from ------------------------------
  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const maps = new Map(); // path -> map JSON text, then the decoded lines
  function decodeMappings(text) {
    const lines = [];
    let srcLine = 0;
    let srcCol = 0;
    for (const lineText of text.split(";")) {
      const segments = [];
      let genCol = 0;
      for (const seg of lineText ? lineText.split(",") : []) {
        const v = [];
        let shift = 0;
        let value = 0;
        for (const ch of seg) {
          const d = B64.indexOf(ch);
          value += (d & 31) << shift;
          if (d & 32) {
            shift += 5;
          } else {
            v.push(value & 1 ? -(value >>> 1) : value >>> 1);
            value = 0;
            shift = 0;
          }
        }
        genCol += v[0];
        if (v.length >= 4) {
          srcLine += v[2];
          srcCol += v[3];
          segments.push([genCol, srcLine, srcCol]);
        }
      }
      lines.push(segments);
    }
    return lines;
  }
  // "path:line:column" in the script's own text for a position of the compiled module (line
  // from 1, column from 1), or the compiled position when there is no map.
  function original(path, line, column) {
    let m = maps.get(path);
    if (typeof m === "string") {
      try {
        m = m ? decodeMappings(JSON.parse(m).mappings) : [];
      } catch (e) {
        m = [];
      }
      maps.set(path, m);
    }
    const segments = m && m[line - 1];
    if (segments && segments.length > 0) {
      let best = segments[0];
      for (const s of segments) {
        if (s[0] <= column - 1) best = s;
      }
      return `${path}:${best[1] + 1}:${best[2] + 1}`;
    }
    return `${path}:${line}:${column}`;
  }
  // The first frame of an error's stack that is in a module of the script.
  function where(e) {
    const stack = e !== null && typeof e === "object" && typeof e.stack === "string" ? e.stack : "";
    for (const frame of stack.split("\n")) {
      const at = /@(.*):(\d+):(\d+)$/.exec(frame);
      if (at && maps.has(at[1])) return original(at[1], Number(at[2]), Number(at[3]));
    }
    if (e !== null && typeof e === "object" && maps.has(e.fileName)) {
      return original(e.fileName, e.lineNumber, e.columnNumber);
    }
    return "";
  }
  function describeError(e) {
    let text;
    if (e instanceof Error) {
      text = `${e.name}: ${e.message}`;
    } else {
      try {
        text = typeof e === "string" ? e : JSON.stringify(e);
      } catch (_) {
        text = String(e);
      }
      text = `thrown value ${text}`;
    }
    const at = where(e);
    return at ? `${text} (at ${at})` : text;
  }

  // Console ----------------------------------------------------------------------------------
  let consoleOn = true;
  function show(v) {
    if (typeof v === "string") return v;
    if (v !== null && typeof v === "object" && !(v instanceof Error)) {
      try {
        return JSON.stringify(v);
      } catch (_) {
        // cycles: String() below
      }
    }
    return String(v);
  }
  function printer(level) {
    return (...args) => {
      if (consoleOn && level >= host.levels) host.log(level, args.map(show).join(" "));
    };
  }
  const console = Object.freeze({
    trace: printer(0),
    debug: printer(1),
    log: printer(2),
    info: printer(2),
    warn: printer(3),
    error: printer(4),
    disable() {
      consoleOn = false;
    },
    enable() {
      consoleOn = true;
    },
  });
  Object.defineProperty(globalThis, "console", { value: console, writable: false });

  // Configuration recorded by replicator@v2 --------------------------------------------------
  // ASCII case folding, as the C++ side and the apply path fold names.
  const fold = (s) => s.replace(/[A-Z]+/g, (c) => c.toLowerCase());
  // folded schema name -> {name, onRowUpsert, onRowDelete, v1?, labels?}
  const schemaHandlers = new Map();
  const REPLICATION_KEY = "__REPLICATION_KEY__";
  const tableHandlers = []; // {name: folded table name, schema: folded schema or null, cfg}
  let loading = true;
  function mustLoad(what) {
    if (!loading) throw new Error(`${what} can only be called while the script loads`);
  }
  function checkHandler(call, handlers, name, required) {
    const h = handlers[name];
    if (h === undefined || h === null) {
      if (required) {
        throw new TypeError(
          `${call}: ${name} is missing: define both onRowUpsert and onRowDelete ` +
            `(return the row to pass it through)`,
        );
      }
      return null;
    }
    if (typeof h !== "function") throw new TypeError(`${call}: ${name} is not a function`);
    return h;
  }
  function configureTargetSchema(name, handlers) {
    mustLoad("configureTargetSchema");
    if (typeof name !== "string" || name === "") {
      throw new TypeError("configureTargetSchema: the first argument must name a target schema");
    }
    const call = `configureTargetSchema(${JSON.stringify(name)})`;
    if (handlers === null || typeof handlers !== "object") {
      throw new TypeError(`${call}: the second argument must be {onRowUpsert, onRowDelete}`);
    }
    schemaHandlers.set(fold(name), {
      name,
      onRowUpsert: checkHandler(call, handlers, "onRowUpsert", true),
      onRowDelete: checkHandler(call, handlers, "onRowDelete", true),
    });
  }
  function configureTargetTables(tables, cfg) {
    mustLoad("configureTargetTables");
    if (!Array.isArray(tables) || tables.some((t) => typeof t !== "string" || t === "")) {
      throw new TypeError("configureTargetTables: the first argument must be an array of table names");
    }
    const call = `configureTargetTables(${JSON.stringify(tables)})`;
    if (cfg === null || typeof cfg !== "object") {
      throw new TypeError(`${call}: the second argument must be {onRowUpsert, onRowDelete, onWrite}`);
    }
    const entry = {
      onRowUpsert: checkHandler(call, cfg, "onRowUpsert", false),
      onRowDelete: checkHandler(call, cfg, "onRowDelete", false),
      onWrite: checkHandler(call, cfg, "onWrite", false),
    };
    for (const t of tables) addTable(t, entry);
  }
  // "t", "schema.t", "db.schema.t"; parts may be double-quoted ("a.b" is one part).
  function splitName(text) {
    const parts = [];
    let cur = "";
    let quoted = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c === '"') {
        if (quoted && text[i + 1] === '"') {
          cur += '"';
          i++;
        } else {
          quoted = !quoted;
        }
      } else if (c === "." && !quoted) {
        parts.push(cur);
        cur = "";
      } else {
        cur += c;
      }
    }
    parts.push(cur);
    return parts;
  }
  function addTable(t, entry) {
    const parts = splitName(t);
    tableHandlers.push({
      name: fold(parts[parts.length - 1]),
      schema: parts.length > 1 ? fold(parts.slice(0, -1).join(".")) : null,
      cfg: entry,
    });
  }
  const v2 = Object.freeze({
    configureTargetSchema,
    configureTargetTables,
    getTX: () => activeWrite("getTX").entry.tx,
    write: (rows) => {
      const conv = activeWrite("write");
      return writeOps(conv, conv.entry, rows, "write");
    },
  });

  // Modules ------------------------------------------------------------------------------------
  // replicator@v1 (and its old name cdc-sink@v1): configureSource and configureTable with the
  // row functions and apply, on the same machinery; what changes the built-in writer (rowLimit,
  // extras, exprs, cas, deadlines, merge) goes to the C++ side (describe()).
  function configureSource(name, props) {
    mustLoad("configureSource");
    if (typeof name !== "string" || name === "") {
      throw new TypeError("configureSource: the first argument must name a source (the target schema)");
    }
    const call = `configureSource(${JSON.stringify(name)})`;
    if (props === null || typeof props !== "object") {
      throw new TypeError(`${call}: the second argument must be {dispatch, deletesTo} or {target}`);
    }
    const passKey = (table) => (doc, meta, ctx) => ({ [table]: [{ [REPLICATION_KEY]: ctx.key }] });
    let upsert;
    let del;
    if (props.target !== undefined) {
      if (typeof props.target !== "string" || props.target === "") {
        throw new TypeError(`${call}: target must be a table name`);
      }
      const target = props.target;
      upsert = (doc) => ({ [target]: [doc] });
      del = passKey(target);
    } else if (props.dispatch !== undefined) {
      if (typeof props.dispatch !== "function") throw new TypeError(`${call}: dispatch is not a function`);
      upsert = props.dispatch;
      if (typeof props.deletesTo === "string" && props.deletesTo !== "") {
        del = passKey(props.deletesTo);
      } else if (typeof props.deletesTo === "function") {
        del = props.deletesTo;
      } else {
        throw new TypeError(`${call}: dispatch needs deletesTo (a table name or a function)`);
      }
    } else {
      throw new TypeError(`${call}: one of mapper or target must be set`);
    }
    schemaHandlers.set(fold(name), {
      name,
      v1: true,
      onRowUpsert: upsert,
      onRowDelete: del,
      labels: { onRowUpsert: "dispatch", onRowDelete: "deletesTo" },
    });
  }
  // standardMerge(fallback?): a marker configureTable recognises, holding the fallback.
  const standardMerges = new WeakMap();
  function standardMerge(fallback) {
    if (fallback !== undefined && fallback !== null && typeof fallback !== "function") {
      throw new TypeError("standardMerge: the fallback must be a merge function");
    }
    const marker = Object.freeze({});
    standardMerges.set(marker, fallback ?? null);
    return marker;
  }
  // A Go duration ("1h", "1h30m", "2.5s", "300ms") in microseconds, or NaN.
  const GO_UNITS = { ns: 1e-3, us: 1, "\u00b5s": 1, "\u03bcs": 1, ms: 1e3, s: 1e6, m: 60e6, h: 3600e6 };
  function goDuration(text) {
    const part = /([0-9]*\.?[0-9]*)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/y;
    let total = 0;
    let at = text.startsWith("+") ? 1 : 0;
    while (at < text.length) {
      part.lastIndex = at;
      const m = part.exec(text);
      if (!m || m[1] === "" || m[1] === ".") return NaN;
      total += Number(m[1]) * GO_UNITS[m[2]];
      at = part.lastIndex;
    }
    return text === "" || text === "+" ? NaN : Math.round(total);
  }
  // rowLimit, extras, exprs, cas and deadlines: how the built-in writer writes the table (the
  // C++ side checks the columns against the target's tables).
  function writerOptions(call, props) {
    const out = { call, rowLimit: 0, extras: "", exprs: [], cas: [], deadlines: [], merge: false };
    if (props.cas !== undefined) {
      if (!Array.isArray(props.cas) || props.cas.length === 0 ||
          props.cas.some((c) => typeof c !== "string" || c === "")) {
        throw new TypeError(`${call}: cas must be an array of column names`);
      }
      out.cas = [...props.cas];
    }
    if (props.deadlines !== undefined) {
      if (props.deadlines === null || typeof props.deadlines !== "object" || Array.isArray(props.deadlines)) {
        throw new TypeError(`${call}: deadlines must be an object of column names and durations`);
      }
      for (const [column, d] of Object.entries(props.deadlines)) {
        const us = typeof d === "string" ? goDuration(d) : NaN;
        if (!(us >= 1) || us > Number.MAX_SAFE_INTEGER) {
          throw new TypeError(`${call}: deadlines.${column} must be a positive duration such as "1h", "90s" or "1h30m", not ${JSON.stringify(d)}`);
        }
        out.deadlines.push([column, us]);
      }
    }
    if (props.rowLimit !== undefined) {
      if (!Number.isInteger(props.rowLimit) || props.rowLimit < 1 || props.rowLimit > 1e9) {
        throw new TypeError(`${call}: rowLimit must be a whole number of rows, at least 1`);
      }
      out.rowLimit = props.rowLimit;
    }
    if (props.extras !== undefined) {
      if (typeof props.extras !== "string" || props.extras === "") {
        throw new TypeError(`${call}: extras must name a column`);
      }
      out.extras = props.extras;
    }
    if (props.exprs !== undefined) {
      if (props.exprs === null || typeof props.exprs !== "object" || Array.isArray(props.exprs)) {
        throw new TypeError(`${call}: exprs must be an object of column names and SQL expressions`);
      }
      for (const [column, sql] of Object.entries(props.exprs)) {
        if (typeof sql !== "string" || sql.trim() === "") {
          throw new TypeError(`${call}: exprs.${column} must be an SQL expression (a string; $0 is the value)`);
        }
        out.exprs.push([column, sql]);
      }
    }
    if (props.merge !== undefined) {
      if (typeof props.merge !== "function" && !standardMerges.has(props.merge)) {
        throw new TypeError(`${call}: merge must be a function or standardMerge()`);
      }
      if (out.cas.length === 0) {
        throw new TypeError(`${call}: merge needs cas: the rows it resolves are those the cas columns do not write`);
      }
      out.merge = true;
    }
    return out.rowLimit || out.extras || out.exprs.length || out.cas.length || out.deadlines.length
      ? out
      : null;
  }
  // setOptions({flag: "value"}): flags of replicator start, set over the command line's; the C++
  // side checks the names (an unknown one fails the start) and parses the values as flags.
  const options = [];
  function setOptions(opts) {
    mustLoad("setOptions");
    if (opts === null || typeof opts !== "object" || Array.isArray(opts)) {
      throw new TypeError("setOptions: the argument must be an object of flag names and values");
    }
    for (const [name, value] of Object.entries(opts)) {
      if (!["string", "number", "boolean"].includes(typeof value)) {
        throw new TypeError(`setOptions: option ${JSON.stringify(name)} must be a string (or a number or boolean), not ${kind(value)}`);
      }
      options.push([name, String(value)]);
    }
  }
  function configureTable(name, props) {
    mustLoad("configureTable");
    if (typeof name !== "string" || name === "") {
      throw new TypeError("configureTable: the first argument must name a table");
    }
    const call = `configureTable(${JSON.stringify(name)})`;
    if (props === null || typeof props !== "object") {
      throw new TypeError(`${call}: the second argument must be an object of table options`);
    }
    const map = checkHandler(call, props, "map", false);
    const deleteKey = checkHandler(call, props, "deleteKey", false);
    const apply = checkHandler(call, props, "apply", false);
    const ignore = props.ignore ?? {};
    if (ignore === null || typeof ignore !== "object") throw new TypeError(`${call}: ignore must be an object`);
    const ignored = new Set(Object.keys(ignore).filter((k) => ignore[k]).map(fold));
    const strip = (doc) => {
      for (const k of Object.keys(doc)) {
        if (ignored.has(fold(k))) delete doc[k];
      }
      return doc;
    };
    addTable(name, {
      onRowUpsert:
        map || ignored.size > 0
          ? (row, meta) => {
              const doc = map ? map(row, meta) : row;
              if (!isRow(doc)) return doc;
              return Object.keys(doc).length === 0 ? null : strip(doc);
            }
          : null,
      onRowDelete: deleteKey,
      onWrite: apply,
      writer: writerOptions(call, props),
      merge: props.merge === undefined ? null : props.merge,
      v1: true,
      labels: { onRowUpsert: "map", onRowDelete: "deleteKey", onWrite: "apply" },
    });
  }
  const v1 = Object.freeze({
    replicationKey: REPLICATION_KEY,
    configureSource,
    configureTable,
    getTX: () => activeWrite("getTX").entry.tx,
    randomUUID: () => host.uuid(),
    setOptions,
    standardMerge,
  });
  const modules = new Map([
    ["replicator@v2", { exports: v2 }],
    ["replicator@v1", { exports: v1 }],
    ["cdc-sink@v1", { exports: v1 }],
  ]);
  function resolve(from, spec) {
    if (modules.has(spec) && !modules.get(spec).path) return spec;
    if (typeof spec !== "string" || spec === "") {
      throw new Error(`${from}: require() needs a module name`);
    }
    let rest = spec;
    const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(spec);
    if (scheme) {
      if (scheme[1].toLowerCase() !== "file") {
        throw new Error(
          `${from}: cannot import "${spec}": only files in the script's folder can be imported`,
        );
      }
      rest = spec.slice(scheme[0].length).replace(/^\/\/[^/]*/, "");
    }
    const parts = rest.startsWith("/") ? [] : from.split("/").slice(0, -1);
    for (const p of rest.split("/")) {
      if (p === "" || p === ".") continue;
      if (p === "..") {
        if (parts.length === 0) {
          throw new Error(
            `${from}: cannot import "${spec}": it is outside the script's folder`,
          );
        }
        parts.pop();
      } else {
        parts.push(p);
      }
    }
    if (parts.length === 0) throw new Error(`${from}: cannot import "${spec}": not a file`);
    if (from.endsWith(".ts") && !parts[parts.length - 1].includes(".")) {
      parts[parts.length - 1] += ".ts";
    }
    return parts.join("/");
  }
  function load(path) {
    const known = modules.get(path);
    if (known) return known.exports;
    const module = { exports: {}, path };
    modules.set(path, module); // a cycle sees the partial exports, as in CommonJS
    const compiled = host.compile(path);
    maps.set(path, compiled.map);
    const require = (spec) => {
      if (!loading) {
        throw new Error(`${path}: require(${JSON.stringify(spec)}) after the script has loaded: import modules at its top level`);
      }
      return load(resolve(path, spec));
    };
    compiled.fn.call(module.exports, module.exports, require, module);
    return module.exports;
  }

  // Rows -------------------------------------------------------------------------------------
  // A request or staged chunk for one target schema, as the C++ side writes it:
  //   {tables: [{topic, table, rows: [{a: after|null, o?, n?, k: [key…], kt, b?: before, u, m?}]}]}
  // (o: the original text of the row's JSON values; n: of its numbers for an extras column).
  // with every number as a string. `catalog` maps each folded target table name to
  // [name, pk…]. The answer is a webhook body: {"payload": [messages…]}.
  class ResultError extends Error {}
  let current = null; // [handler, scope, table, key] of the handler running now
  function currentTextOf([handler, scope, table, key]) {
    const where = `${handler} of ${scope} on table ${table}`;
    return key.length > 0 ? `${where}, key ${JSON.stringify(key)}` : where;
  }
  function currentText() {
    return current ? currentTextOf(current) : "";
  }
  function isRow(v) {
    return v !== null && typeof v === "object" && !Array.isArray(v);
  }
  function isRouting(v) {
    const values = Object.values(v);
    return values.length > 0 && values.every((rows) => Array.isArray(rows) && rows.every(isRow));
  }
  function kind(v) {
    if (v === null || v === undefined) return String(v);
    if (Array.isArray(v)) return "an array";
    return typeof v === "object" ? "an object" : `a ${typeof v}`;
  }
  function refuse(text) {
    throw new ResultError(`${currentText()} ${text}`);
  }
  // A row handler that returned a promise (an async function): refused; a rejection it may
  // still have is handled here, so that it cannot fail the whole call as an unhandled one.
  function refusePromise(p) {
    p.then(undefined, () => {});
    refuse("returned a Promise; row handlers return their result");
  }
  function checkValues(row) {
    for (const [column, v] of Object.entries(row)) {
      const t = typeof v;
      if (t === "undefined") {
        row[column] = null; // a column set to undefined is written as NULL, not left out
        continue;
      }
      if (t === "function" || t === "symbol" || t === "bigint") {
        refuse(`returned a row whose column ${column} holds a ${t}`);
      }
      if (t === "number" && !Number.isFinite(v)) {
        refuse(`returned a row whose column ${column} holds ${v}, which no column can store`);
      }
      if (v !== null && t === "object" && typeof v.then === "function") {
        refuse(`returned a row whose column ${column} holds a Promise`);
      }
    }
  }
  function findColumn(row, column) {
    if (Object.prototype.hasOwnProperty.call(row, column)) return row[column];
    const folded = fold(column);
    for (const [k, v] of Object.entries(row)) {
      if (fold(k) === folded) return v;
    }
    return undefined;
  }
  // The key of `row` in `table`; `fallback` (the incoming key) when the row lacks the key
  // columns and goes back to its own table (a column family's message carries its key only there).
  function keyOf(row, table, fallback) {
    if (fallback && table.slice(1).every((column) => findColumn(row, column) == null)) {
      return fallback;
    }
    // The key of a delete whose table the target lacks, passed on (as replicator@v1 does).
    const passed = row[REPLICATION_KEY];
    if (Array.isArray(passed) && Object.keys(row).length === 1) {
      if (passed.length !== table.length - 1) {
        refuse(`returned ${passed.length} ${REPLICATION_KEY} values, but table ${table[0]} has ${table.length - 1} primary key columns`);
      }
      return passed;
    }
    const key = [];
    for (const column of table.slice(1)) {
      const v = findColumn(row, column);
      if (v === undefined || v === null) {
        refuse(`returned a row for table ${table[0]} without its primary key column ${column}`);
      }
      key.push(v);
    }
    return key;
  }
  // The last configuration naming the table wins.
  function tableConfig(schemaKey, table) {
    const name = fold(table);
    for (let i = tableHandlers.length - 1; i >= 0; i--) {
      const t = tableHandlers[i];
      if (t.name === name && (t.schema === null || t.schema === schemaKey)) return t.cfg;
    }
    return null;
  }
  const copy = (v) => JSON.parse(JSON.stringify(v));
  // Per handler of this run: [table ("*" for a schema-level handler), function, calls, rows
  // filtered (null or {}), rows passed on].
  let counts = new Map();
  function count(table, fn, filtered) {
    const k = `${table}\u0000${fn}`;
    let c = counts.get(k);
    if (!c) counts.set(k, (c = [table, fn, 0, 0, 0]));
    c[2] += 1;
    c[filtered ? 3 : 4] += 1;
  }
  // Keys compare by their text downstream (folding, staging, the scheduler): a key whose values
  // read as the incoming ones keeps the incoming text (r.kt); another has its scalars as strings.
  const KEY_MARK = "\u0000key";
  const KEY_MARK_JSON = JSON.stringify(KEY_MARK);
  const keyPart = (v) => (v !== null && typeof v === "object" ? JSON.stringify(v) : String(v));
  const sameKey = (key, r) => key.length === r.k.length && key.every((v, i) => keyPart(v) === keyPart(r.k[i]));
  const keyText = (v) => (v === null || typeof v === "object" || typeof v === "boolean" ? v : String(v));
  function isPromise(v) {
    return v !== null && typeof v === "object" && typeof v.then === "function";
  }
  // Target tables by name as the catalog spells it; by folded name when that is not exact.
  function catalogLookup(catalogText) {
    const catalog = JSON.parse(catalogText);
    let folded = null;
    return (name) => {
      if (Object.prototype.hasOwnProperty.call(catalog, name)) return catalog[name];
      if (!folded) {
        folded = new Map();
        for (const [k, t] of Object.entries(catalog)) {
          if (!folded.has(fold(k))) folded.set(fold(k), t);
        }
      }
      return folded.get(fold(name));
    };
  }
  // A JSON value the script left as it came (r.o: the original text of the row's JSON values)
  // is written as that text: parsing it for the script rounded numbers past 2^53 and rewrote
  // 1.50 as 1.5. The mark stands in for it until the message is text; no value holds it.
  const jsonMark = () => `\u0000json${Math.random().toString(36).slice(2)}:`;
  // One message of the webhook body the C++ side reads back: row `r` as it came (its key text,
  // timestamps, before), now under `topic` with `key` and `after`.
  function message(mark, topic, r, key, after) {
    const same = sameKey(key, r);
    let spliced = null;
    // r.n: numbers for an extras column, which the script sees as their text.
    const originals = r.n ? { ...r.o, ...r.n } : r.o;
    if (after !== null && originals) {
      for (const [column, text] of Object.entries(originals)) {
        if (!Object.prototype.hasOwnProperty.call(after, column)) continue;
        const v = after[column];
        const number = r.n && Object.prototype.hasOwnProperty.call(r.n, column) && v === text;
        if (!number) {
          if (v === null || (typeof v !== "object" && typeof v !== "number")) continue;
          if (JSON.stringify(v) !== JSON.stringify(JSON.parse(text))) continue;
        }
        if (!spliced) spliced = { ...after };
        spliced[column] = mark + column;
      }
    }
    const m = { key: same ? KEY_MARK : key.map(keyText), topic, after: spliced || after, updated: r.u };
    if (Object.prototype.hasOwnProperty.call(r, "b")) m.before = r.b;
    if (Object.prototype.hasOwnProperty.call(r, "m")) m.mvcc_timestamp = r.m;
    let text = JSON.stringify(m);
    // Functions as replacements: the texts may hold "$&" and the like.
    if (same) text = text.replace(KEY_MARK_JSON, () => r.kt);
    if (spliced) {
      for (const column of Object.keys(originals)) {
        text = text.replace(JSON.stringify(mark + column), () => originals[column]);
      }
    }
    return text;
  }
  // What a failed handler's error says: its own text for a wrong result, else where it failed.
  function failureText(e) {
    if (e instanceof ResultError) return e.message;
    const scope = currentText();
    return scope ? `${scope} failed: ${describeError(e)}` : describeError(e);
  }
  // Rows whose table-level handler failed, with phases & 4 (the applier diverts them to its
  // dead-letter queue): [group, index, table, function, message] each.
  let refusals = [];
  function run(schema, input, catalogText, phases) {
    current = null;
    refusals = [];
    active = null;
    const lookup = catalogLookup(catalogText);
    const request = JSON.parse(input);
    const schemaKey = fold(schema);
    const source = phases & 1 ? schemaHandlers.get(schemaKey) : undefined;
    const out = [];
    const mark = jsonMark();
    const emit = (topic, r, key, after) => out.push(message(mark, topic, r, key, after));
    const targetTable = (name) => {
      const t = lookup(name);
      if (!t) refuse(`returned rows for table ${name}, which target schema ${schema} does not have`);
      return t;
    };
    // The table-level handlers of `table` on one row; `topic` the one it is emitted under.
    const tablePhase = (table, topic, r, key, after) => {
      const cfg = phases & 2 ? tableConfig(schemaKey, table[0]) : null;
      const handler = after !== null ? "onRowUpsert" : "onRowDelete";
      if (!cfg || !cfg[handler]) return emit(topic, r, key, after);
      const meta = { schema, table: table[0] };
      const label = cfg.labels ? cfg.labels[handler] : handler;
      current = [label, cfg.labels ? "configureTable" : "configureTargetTables", table[0], key];
      host.tick();
      if (after !== null) {
        const row = cfg.onRowUpsert(after, meta);
        count(table[0], label, row === null || row === undefined);
        if (row === null || row === undefined) return;
        if (isPromise(row)) refusePromise(row);
        if (!isRow(row)) refuse(`returned ${kind(row)}; expected a row object or null`);
        checkValues(row);
        return emit(topic, r, keyOf(row, table, key), row);
      }
      const strings = key.map((v) => (typeof v === "string" ? v : JSON.stringify(v)));
      const keys = cfg.onRowDelete(strings, meta);
      const skipped = keys === null || keys === undefined || (Array.isArray(keys) && keys.length === 0);
      count(table[0], label, skipped);
      if (skipped) return;
      if (isPromise(keys)) refusePromise(keys);
      if (!Array.isArray(keys)) refuse(`returned ${kind(keys)}; expected an array of key values or null`);
      if (keys.length !== table.length - 1) {
        refuse(`returned ${keys.length} key values, but table ${table[0]} has ${table.length - 1} primary key columns`);
      }
      for (const v of keys) {
        if (v === null || v === undefined || (typeof v === "number" && !Number.isFinite(v))) {
          refuse(`returned the key value ${v}`);
        }
      }
      return emit(topic, r, keys, null);
    };
    request.tables.forEach((group, g) => {
      const own = lookup(group.table);
      group.rows.forEach((r, i) => {
        if (!source) {
          // Without schema-level handlers a table the target lacks goes on unchanged, for the
          // applier to refuse as it refuses any unknown table.
          if (!own) return emit(group.topic, r, r.k, r.a);
          if (!(phases & 4)) return tablePhase(own, group.topic, r, r.k, r.a);
          try {
            tablePhase(own, group.topic, r, r.k, r.a);
          } catch (e) {
            if (e === "out of memory") throw e;
            refusals.push([g, i, own[0], current ? current[0] : "", failureText(e)]);
          }
          current = null;
          return;
        }
        const deleted = r.a === null;
        const handler = deleted ? "onRowDelete" : "onRowUpsert";
        let arg = r.a;
        if (deleted) {
          arg = isRow(r.b) ? Object.assign({}, r.b) : {};
          if (own && r.k.length === own.length - 1) {
            own.slice(1).forEach((column, i) => (arg[column] = r.k[i]));
          } else {
            // A table the target lacks, or a key of another shape (a region or shard column
            // the target's key does not have): the key as it came.
            arg[REPLICATION_KEY] = r.k;
          }
        }
        const label = source.labels ? source.labels[handler] : handler;
        const scopeName = source.v1 ? "configureSource" : "configureTargetSchema";
        current = [label, `${scopeName}(${JSON.stringify(source.name)})`, group.table, r.k];
        host.tick();
        let result;
        if (source.v1) {
          // replicator@v1's meta: {<source>: true, schema, table, nanos, logical, before}, the
          // HLC's wall time as a string (it has more digits than a double keeps).
          const [nanos, logical] = r.u.split(".");
          const meta = { [source.name]: true, schema, table: group.table, nanos, logical: Number(logical), before: r.b ?? null };
          result = source[handler](arg, meta, { key: r.k });
        } else {
          result = source[handler](arg, { schema, table: group.table });
        }
        if (isPromise(result)) refusePromise(result);
        const dropped = result === null || result === undefined || (isRow(result) && Object.keys(result).length === 0);
        count("*", label, dropped);
        if (dropped) return;
        if (!isRow(result)) {
          refuse(`returned ${kind(result)}; expected a row, a map of table names to arrays of rows, or null`);
        }
        const routed = isRouting(result) ? Object.entries(result) : [[group.table, [result]]];
        const scope = current;
        for (const [name, rows] of routed) {
          for (const row of rows) {
            current = scope;
            if (Object.keys(row).length === 0) continue; // {} filters, as null does
            const table = targetTable(name);
            checkValues(row);
            // Back to its own table: under its own topic (a column family's stays one).
            const home = table === own;
            const key = keyOf(row, table, home ? r.k : null);
            // A table-level handler gets a copy: the script may have routed one object to several
            // tables, or keep it. Without one, emit() writes the row out at once.
            const after = deleted ? null : phases & 2 && tableConfig(schemaKey, table[0]) ? copy(row) : row;
            tablePhase(table, home ? group.topic : table[0], r, key, after);
          }
        }
      });
    });
    current = null;
    return `{"payload":[${out.join(",")}]}`;
  }
  // merge (replicator@v1 configureTable): the rows cas did not write, each resolved to
  // {apply: row} (written over the proposed row), {dlq: name} or {drop: true}.
  // Whether a script's value and a target's are the same, by the column's kind (`kinds`: name ->
  // "number", "float" or "time"; others compare as they are, JSON documents whatever the order
  // of their keys). Both come as text, but a target may spell a value otherwise: 1.50 for 1.5,
  // 1 for true, a timestamp with a space or an offset.
  const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/;
  const decimal = (v) => {
    const [whole, fraction = ""] = v.replace(/^-/, "").split(".");
    const digits = fraction.replace(/0+$/, "");
    const sign = v.startsWith("-") && (whole !== "0" || digits !== "") ? "-" : "";
    return sign + whole + (digits ? "." + digits : "");
  };
  // A timestamp as "<seconds since 1970 UTC>.<fraction without trailing zeros>", exact to the
  // digit; null when it is not one.
  const TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[-+]\d{2}(?::?\d{2}(?::?\d{2})?)?)?$/;
  const instant = (v) => {
    const m = TIME.exec(v);
    if (!m) return null;
    let offset = 0; // seconds east of UTC (PostgreSQL prints +05:53:28 for old dates)
    if (m[8] && m[8] !== "Z") {
      const digits = m[8].replace(/:/g, "");
      offset = (digits[0] === "-" ? -1 : 1) *
        (Number(digits.slice(1, 3)) * 3600 + Number(digits.slice(3, 5) || "0") * 60 + Number(digits.slice(5, 7) || "0"));
    }
    const day = new Date(0); // setUTCFullYear: years below 100 are not 19xx
    day.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
    const seconds = day.getTime() / 1000 + Number(m[4]) * 3600 + Number(m[5]) * 60 + Number(m[6]) - offset;
    return `${seconds}.${(m[7] || "").replace(/0+$/, "")}`;
  };
  // A number with an exponent in plain notation ("1.5E+3" -> "1500"), exactly; others as they are.
  const plain = (v) => {
    const m = /^(-?)(\d+)(?:\.(\d+))?[eE]([-+]?\d+)$/.exec(v);
    if (!m) return v;
    const digits = m[2] + (m[3] || "");
    const point = m[2].length + Number(m[4]);
    if (Math.abs(point) > 1000) return v;
    const whole = point <= 0 ? "0" : digits.slice(0, point).padEnd(point, "0");
    const fraction = point < 0 ? "0".repeat(-point) + digits : digits.slice(Math.max(point, 0));
    return `${m[1]}${whole.replace(/^0+(?=\d)/, "")}${fraction ? "." + fraction : ""}`;
  };
  function sameDocument(a, b) {
    if (a === b) return true;
    if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
    if (Array.isArray(a) !== Array.isArray(b)) return false;
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && sameDocument(a[k], b[k]));
  }
  function sameValue(a, b, kind) {
    if (a === undefined || b === undefined) return a === b;
    if (a === null || b === null) return a === b;
    if (typeof a === "object" || typeof b === "object") return sameDocument(a, b);
    if (typeof a === "boolean" || typeof b === "boolean") {
      // A changefeed's BOOL against a target's 1/0 (MySQL) or t/f.
      const truth = (v) => (v === true || v === "1" || v === "t" || v === "true" ? true : v === false || v === "0" || v === "f" || v === "false" ? false : v);
      return truth(a) === truth(b);
    }
    const x = String(a);
    const y = String(b);
    if (x === y) return true;
    switch (kind) {
      case "number": {
        const [px, py] = [plain(x), plain(y)];
        return NUMBER.test(px) && NUMBER.test(py) && decimal(px) === decimal(py);
      }
      case "float":
        return Number(x) === Number(y) && !Number.isNaN(Number(x));
      case "time": {
        const t = instant(x);
        return t !== null && t === instant(y);
      }
      default:
        return false;
    }
  }
  // standardMerge: the columns only the batch changed (before → proposed) are taken over the
  // target's row; those both sides changed go to the fallback as `unmerged`.
  function runStandardMerge(op, fallback, pk, kinds) {
    if (!isRow(op.target) || Object.keys(op.target).length === 0) return { apply: op.proposed };
    // Without the row before (a changefeed without diff), as the original: the proposed row,
    // so that the target's row is kept.
    const before = isRow(op.before) ? op.before : op.proposed;
    const target = op.target;
    const key = new Set(pk.map(fold));
    const props = new Set();
    for (const doc of [op.proposed, before, target]) {
      for (const k of Object.keys(doc)) if (!key.has(fold(k))) props.add(k);
    }
    const unmerged = [];
    const has = (doc, k) => Object.prototype.hasOwnProperty.call(doc, k);
    for (const k of props) {
      const b = has(before, k) ? before[k] : undefined;
      const p = has(op.proposed, k) ? op.proposed[k] : undefined;
      const t = has(target, k) ? target[k] : undefined;
      if (sameValue(b, p, kinds[k]) || sameValue(t, p, kinds[k])) continue;
      if (has(target, k) && !sameValue(b, t, kinds[k])) {
        unmerged.push(k);
      } else if (p === undefined) {
        delete target[k];
      } else {
        target[k] = p;
      }
    }
    // The columns the batch writes (the others stay as they are on the target).
    const written = () => Object.fromEntries(Object.keys(op.proposed).map((k) => [k, has(target, k) ? target[k] : op.proposed[k]]));
    if (unmerged.length === 0) return { apply: written() };
    unmerged.sort();
    if (!fallback) {
      throw new Error(`standardMerge cannot merge column${unmerged.length > 1 ? "s" : ""} ${unmerged.join(", ")} (changed both in the batch and in the target) and has no fallback`);
    }
    return fallback({ ...op, target, unmerged });
  }
  function merge(schema, table, input) {
    current = null;
    const cfg = tableConfig(fold(schema), table);
    if (!cfg || !cfg.merge) throw new Error(`table ${table} has no merge`);
    const { pk, kinds, rows } = JSON.parse(input);
    const fallback = standardMerges.has(cfg.merge) ? standardMerges.get(cfg.merge) : undefined;
    const out = rows.map((c) => {
      current = ["merge", "configureTable", table, c.key];
      host.tick();
      const op = { before: c.before ?? undefined, meta: {}, proposed: c.proposed, target: c.target };
      const result = fallback === undefined ? cfg.merge(op) : runStandardMerge(op, fallback, pk, kinds);
      if (isPromise(result)) refusePromise(result);
      if (!isRow(result)) refuse(`returned ${kind(result)}; expected a MergeResult: {apply: row}, {dlq: name} or {drop: true}`);
      const given = ["apply", "dlq", "drop"].filter((k) => result[k] !== undefined);
      if (given.length !== 1) refuse("did not return a well-formed MergeResult: one of apply, dlq or drop");
      if (given[0] === "apply") {
        if (!isRow(result.apply)) refuse(`returned an unexpected type of apply value: ${kind(result.apply)}`);
        const row = { ...c.proposed, ...result.apply };
        for (const k of Object.keys(row)) {
          const col = pk.find((p) => fold(p) === fold(k));
          if (col !== undefined && !sameValue(row[k], c.proposed[col], kinds[col])) refuse(`returned an apply value that changes key column ${col}; a merge cannot move a row to another key`);
        }
        checkValues(row);
        return ["apply", JSON.stringify(row)];
      }
      if (given[0] === "dlq") {
        if (typeof result.dlq !== "string" || result.dlq === "") refuse("returned a dlq that names no dead-letter queue");
        return ["dlq", result.dlq];
      }
      if (result.drop !== true) refuse("returned a drop that is not true");
      return ["drop"];
    });
    current = null;
    return JSON.stringify(out);
  }
  function takeCounts() {
    const out = JSON.stringify([...counts.values()]);
    counts = new Map();
    return out;
  }

  // onWrite (and replicator@v1 apply): rows written with SQL ---------------------------------
  // A write is a conversation with the applier's thread, which holds the target transaction:
  // beginWrite starts the handlers on a batch; each statement or api.write() they ask for waits
  // in `pending` until stepWrite hands it over and the C++ side has run it on the applier's
  // session; resumeWrite settles their promises, and the handlers go on. So the script's thread
  // never waits for the database, and other batches run between the sections of one write.
  // getTX() and write() answer for the conversation whose section runs now (`active`); a
  // transaction object used after its conversation ended throws.
  const writes = new Map(); // id -> conversation
  let active = null;
  function activeWrite(what) {
    if (!active) throw new Error(`${what}() can only be called inside onWrite (apply)`);
    return active;
  }
  // A statement's parameter as bind text (null: NULL).
  function param(v, i) {
    if (v === null || v === undefined) return null;
    switch (typeof v) {
      case "string":
        return v;
      case "number":
        if (!Number.isFinite(v)) throw new TypeError(`parameter ${i + 1} is ${v}, which no column can store`);
        return String(v);
      case "boolean":
      case "bigint":
        return String(v);
      case "object":
        return v instanceof Date ? v.toISOString() : JSON.stringify(v);
      default:
        throw new TypeError(`parameter ${i + 1} is a ${typeof v}`);
    }
  }
  function ask(conv, req) {
    return new Promise((resolve, reject) => {
      const id = conv.next++;
      conv.waiting.set(id, { resolve, reject });
      conv.pending.push({ id, ...req });
    });
  }
  function makeTx(conv, entry) {
    const open = (what) => {
      if (!conv.open) throw new Error(`${what}(): the transaction of this ${entry.label} call has ended`);
    };
    const sql = (kind) => (text, ...params) => {
      open(kind);
      if (typeof text !== "string" || text.trim() === "") throw new TypeError(`${kind}() needs the SQL text`);
      return ask(conv, { kind, sql: text, params: params.map(param) });
    };
    const query = sql("query");
    const exec = sql("exec");
    return Object.freeze({
      query,
      exec: (...args) => exec(...args).then(() => undefined),
      apply: (ops) => {
        open("apply");
        return writeOps(conv, entry, ops, "apply");
      },
      columns: () => entry.info.columns.map((c) => ({ ...c })),
      schema: () => entry.info.schema,
      table: () => entry.info.table,
    });
  }
  // api.write(rows) / getTX().apply(ops): the built-in write of row operations, in the
  // transaction. An operation the handler received keeps its row's exact texts; a new one is
  // written at the batch's newest timestamp.
  function writeOps(conv, entry, ops, what) {
    if (!conv.open) throw new Error(`${what}(): the transaction of this ${entry.label} call has ended`);
    if (!Array.isArray(ops)) throw new TypeError(`${what}() takes an array of row operations`);
    const table = entry.table;
    const out = [];
    ops.forEach((op, i) => {
      if (!isRow(op)) throw new TypeError(`${what}(): operation ${i} is ${kind(op)}, not a row operation`);
      const action = String(op.action).toLowerCase();
      const from = entry.origin.get(op);
      const r = from || { k: [], kt: "", u: entry.newest };
      const topic = from ? from.topic : table[0];
      if (action === "upsert") {
        if (!isRow(op.data)) throw new TypeError(`${what}(): operation ${i} (upsert) has no data object`);
        checkValues(op.data);
        out.push(message(conv.mark, topic, r, keyOf(op.data, table, from ? r.k : null), op.data));
      } else if (action === "delete") {
        const pk = op.pk;
        if (!Array.isArray(pk) || pk.length !== table.length - 1 || pk.some((v) => v === null || v === undefined)) {
          throw new TypeError(`${what}(): operation ${i} (delete) needs pk: the ${table.length - 1} primary key values of table ${table[0]}`);
        }
        out.push(message(conv.mark, topic, r, pk, null));
      } else {
        throw new TypeError(`unknown ApplyOp action ${JSON.stringify(op.action)}`);
      }
    });
    if (out.length === 0) return Promise.resolve();
    return ask(conv, { kind: "write", body: `{"payload":[${out.join(",")}]}` }).then(() => undefined);
  }
  // Whether HLC text a ("wall.logical", digits) is later than b.
  function laterHlc(a, b) {
    const [aw, al] = a.split(".");
    const [bw, bl] = b.split(".");
    if (aw.length !== bw.length) return aw.length > bw.length;
    if (aw !== bw) return aw > bw;
    return Number(al) > Number(bl);
  }
  function beginWrite(id, schema, input, catalogText, infoText) {
    current = null;
    const lookup = catalogLookup(catalogText);
    const info = JSON.parse(infoText);
    const request = JSON.parse(input);
    const schemaKey = fold(schema);
    const conv = { id, open: true, next: 1, pending: [], waiting: new Map(), mark: jsonMark(), entry: null, current: null, done: false, failure: null, counts: [] };
    writes.set(id, conv);
    active = conv;
    // The rows of each table, tables in order of first appearance.
    const entries = new Map();
    for (const group of request.tables) {
      const table = lookup(group.table);
      const cfg = table && tableConfig(schemaKey, table[0]);
      if (!cfg || !cfg.onWrite) throw new Error(`table ${group.table} has no onWrite handler`);
      let entry = entries.get(table[0]);
      if (!entry) {
        const label = cfg.labels ? cfg.labels.onWrite : "onWrite";
        entry = { table, cfg, label, ops: [], origin: new Map(), newest: "0.0", info: info[table[0]] };
        entry.tx = makeTx(conv, entry);
        entries.set(table[0], entry);
      }
      const meta = { schema, table: table[0] };
      for (const r of group.rows) {
        const pk = r.k.map((v) => (typeof v === "string" ? v : JSON.stringify(v)));
        // replicator@v1's operations as its code lists them (meta is not kept in staging).
        const op = cfg.v1
          ? r.a === null
            ? { action: "delete", before: r.b ?? null, meta: null, pk }
            : { action: "upsert", before: r.b ?? null, data: r.a, meta: null, pk }
          : r.a === null
            ? { action: "delete", meta, pk }
            : { action: "upsert", data: r.a, meta, pk };
        if (!cfg.v1 && Object.prototype.hasOwnProperty.call(r, "b")) op.before = r.b;
        entry.ops.push(op);
        entry.origin.set(op, { ...r, topic: group.topic });
        if (laterHlc(r.u, entry.newest)) entry.newest = r.u;
      }
    }
    // One table at a time, each handler's promise settled before the next table's starts.
    (async () => {
      for (const entry of entries.values()) {
        conv.entry = entry;
        conv.current = [entry.label, entry.cfg.labels ? "configureTable" : "configureTargetTables", entry.table[0], []];
        current = conv.current;
        conv.counts.push([entry.table[0], entry.label, 1, 0, entry.ops.length]);
        host.tick();
        const result = entry.cfg.onWrite(entry.ops);
        if (!isPromise(result) && result !== undefined) {
          refuse(`returned ${kind(result)}; it returns a Promise (an async function), or nothing`);
        }
        await result;
      }
    })().then(
      () => {
        conv.done = true;
      },
      (e) => {
        const scope = conv.current ? currentTextOf(conv.current) : "";
        conv.failure = e instanceof ResultError ? e.message : scope ? `${scope} failed: ${describeError(e)}` : describeError(e);
      },
    );
  }
  function resumeWrite(id, resultsText) {
    const conv = writes.get(id);
    active = conv;
    current = conv.current;
    for (const r of JSON.parse(resultsText)) {
      const waiting = conv.waiting.get(r.id);
      conv.waiting.delete(r.id);
      if (Object.prototype.hasOwnProperty.call(r, "error")) waiting.reject(new Error(r.error));
      else waiting.resolve(r.rows);
    }
  }
  // What the conversation needs next, after a line of counts: {requests: [...]}, or (it ends)
  // {done: true} or {failure, table, function}, after the handler calls it made
  // ([[table, function, 1, 0, rows], …]).
  function stepWrite(id) {
    const conv = writes.get(id);
    active = null;
    current = null;
    if (conv.pending.length > 0 && conv.failure === null) {
      const requests = conv.pending;
      conv.pending = [];
      return `\n${JSON.stringify({ requests })}`;
    }
    let answer;
    if (conv.failure !== null) {
      answer = { failure: conv.failure, table: conv.entry ? conv.entry.table[0] : "", function: conv.entry ? conv.entry.label : "" };
    } else if (conv.done) {
      answer = { done: true };
    } else {
      const scope = conv.current ? currentTextOf(conv.current) : "onWrite";
      answer = {
        failure: `${scope}: its promise never settles (it awaits something other than this transaction's statements)`,
        table: conv.entry ? conv.entry.table[0] : "",
        function: conv.entry ? conv.entry.label : "",
      };
    }
    endWrite(id);
    return `${JSON.stringify(conv.counts)}\n${JSON.stringify(answer)}`;
  }
  // Ends a conversation; [table, function] of the handler it was in.
  function endWrite(id) {
    const conv = writes.get(id);
    writes.delete(id);
    active = null;
    current = null;
    if (!conv) return "[\"\",\"\"]";
    conv.open = false;
    return JSON.stringify(conv.entry ? [conv.entry.table[0], conv.entry.label] : ["", ""]);
  }

  return {
    // Loads the main module; an error names the file, line and column.
    load(path) {
      try {
        load(path);
      } catch (e) {
        if (e === "out of memory") throw e;
        throw new Error(describeError(e));
      }
    },
    // What the script configured: {schemas: [names], tables: [[schema|null, table, writes,
    // writer options|null]], options}; loading
    // ends here (after the promise jobs of loading ran).
    describe() {
      loading = false;
      return JSON.stringify({
        schemas: [...schemaHandlers.values()].map((s) => s.name),
        tables: tableHandlers.map((t) => [t.schema, t.name, t.cfg.onWrite !== null, t.cfg.writer ?? null]),
        options,
      });
    },
    // The rows as a webhook body, after a line of counts (takeCounts) and a line of the rows
    // whose handlers failed (with phases & 4; else []).
    run(schema, input, catalog, phases) {
      try {
        const body = run(schema, input, catalog, phases);
        return `${takeCounts()}\n${JSON.stringify(refusals)}\n${body}`;
      } catch (e) {
        if (e === "out of memory") throw e; // the C++ side reports the heap limit
        throw new Error(failureText(e));
      }
    },
    // A write (onWrite, apply) of a batch, in sections; see "onWrite" above. beginWrite and
    // resumeWrite run a section (the C++ side then runs its promise jobs), stepWrite says what
    // the conversation needs next, endWrite abandons it.
    beginWrite(id, schema, input, catalog, info) {
      try {
        beginWrite(id, schema, input, catalog, info);
      } catch (e) {
        if (e === "out of memory") throw e;
        throw new Error(e instanceof ResultError ? e.message : describeError(e));
      }
    },
    // The resolutions of a table's merge for its conflicts.
    merge(schema, table, input) {
      try {
        return merge(schema, table, input);
      } catch (e) {
        if (e === "out of memory") throw e;
        throw new Error(failureText(e));
      }
    },
    resumeWrite,
    stepWrite,
    endWrite,
    // The handler that ran out of time, for the message.
    current: currentText,
    // After a failed run: [table ("*" at schema level), function] of the handler that failed
    // (or ["", ""]), and the counts of the handlers that ran before it.
    failed() {
      const c = current || ["", "", ""];
      const schemaLevel = c[1].startsWith("configureTargetSchema") || c[1].startsWith("configureSource");
      const where = schemaLevel ? "*" : c[2];
      current = null;
      return `${takeCounts()}\n${JSON.stringify([c[0] ? where : "", c[0]])}`;
    },
  };
});
