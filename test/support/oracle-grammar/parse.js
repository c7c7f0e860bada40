// Parses Oracle statements with the PL/SQL grammar of antlr4ts-sql (SQLDialect.PLSQL) and fails
// on any syntax error. Usage: node parse.js [--lines] FILE... ; with --lines, each non-empty
// line of the files after it is a statement; otherwise each file is one statement. ODBC's ?
// placeholders become Oracle's :1, :2 ... (what Oracle's ODBC driver sends the server).
// A control statement PostgreSQL accepts (INSERT ... ON CONFLICT) must be refused, or the
// parser proves nothing.
'use strict';
const fs = require('fs');
const { antlr4tsSQL, SQLDialect } = require('antlr4ts-sql');

function syntaxErrors(sql) {
  let n = 0;
  sql = sql.replace(/\?/g, () => `:${++n}`);
  // A script's statements end with ';' (a PL/SQL block already does: END;).
  if (!sql.endsWith(';')) {
    sql += ';';
  }
  const errors = [];
  const listener = {
    syntaxError: (_r, _s, line, column, message) =>
      errors.push(`${line}:${column} ${message.slice(0, 160)}`),
  };
  const engine = new antlr4tsSQL(SQLDialect.PLSQL);
  const tokens = engine.getTokens(sql, [listener]);
  const parser = engine.getParser(tokens, [listener]);
  engine.getParseTree(parser);
  return errors;
}

const control = 'INSERT INTO "s"."t" ("id","v") VALUES (:1,:2) ON CONFLICT ("id") DO UPDATE SET "v" = excluded."v"';
if (syntaxErrors(control).length === 0) {
  console.error('FAIL the grammar accepted PostgreSQL\'s ON CONFLICT: it checks nothing');
  process.exit(1);
}
console.log('ok   the grammar refuses PostgreSQL\'s ON CONFLICT');

// Statements Oracle documents that this grammar cannot parse: each must still fail here (or the
// entry is stale and the test says so), and is reported, not counted.
const knownGaps = [
  {
    // ALTER SESSION SET <parameter> = '<text>': Oracle's own examples include
    // ALTER SESSION SET TIME_ZONE = '-05:00' and NLS_DATE_FORMAT = 'YYYY MM DD HH24:MI:SS'
    // (https://docs.oracle.com/en/database/oracle/oracle-database/19/sqlrf/ALTER-SESSION.html);
    // the grammar takes no quoted parameter value.
    pattern: /^ALTER SESSION SET [A-Z_]+ = '[^']*'$/,
    why: 'the grammar takes no quoted ALTER SESSION value (Oracle documents this form)',
  },
];

let failures = 0;
let lines = false;
for (const arg of process.argv.slice(2)) {
  if (arg === '--lines') {
    lines = true;
    continue;
  }
  const text = fs.readFileSync(arg, 'utf8');
  const statements = lines ? text.split('\n').filter((l) => l.trim() !== '') : [text.trim()];
  statements.forEach((sql, i) => {
    const errors = syntaxErrors(sql);
    const name = lines ? `${arg}:${i + 1}` : arg;
    const gap = knownGaps.find((g) => g.pattern.test(sql));
    if (gap) {
      if (errors.length === 0) {
        failures++;
        console.log(`FAIL ${name}: listed as a grammar gap, but it parses: remove the entry`);
      } else {
        console.log(`gap  ${name}: ${gap.why}`);
      }
      return;
    }
    if (errors.length > 0) {
      failures++;
      console.log(`FAIL ${name}: ${errors.join('; ')}\n     ${sql}`);
    } else {
      console.log(`ok   ${name}`);
    }
  });
}
process.exit(failures === 0 ? 0 : 1);
