/**
 * BigQuery Standard SQL to DuckDB, one statement at a time, for the subset the emulator runs.
 * The translation is lexical (sql-lexer.ts): statements are recognised by their leading
 * keywords, and expressions are rewritten by sql-expressions.ts.
 * - Names: `` `p.d.t` ``, `` `p`.`d`.`t` ``, `` `d.t` `` and `` `d`.`t` `` name table `t` in dataset
 *   `d` (a DuckDB schema); the project is dropped. A single `` `x` `` is a quoted identifier.
 *   After SCHEMA, `` `p`.`d` `` names dataset `d`.
 * - DDL clauses DuckDB has no use for are dropped: `OPTIONS(…)` anywhere, and `PARTITION BY`,
 *   `CLUSTER BY`, `DEFAULT COLLATE` before a CREATE TABLE's `AS`. `ALTER … SET OPTIONS` checks
 *   that the table exists and changes nothing; `ALTER TABLE` with several actions becomes one
 *   DuckDB statement per action.
 * What it cannot run fails the job with `invalidQuery`, naming the construct.
 */
import { newContext, render, stringValue, type RenderContext } from './sql-expressions.ts';
import { closeOf, findTop, isOp, isWord, skip, splitTop, tokenize, UnsupportedSqlError, type Token } from './sql-lexer.ts';
import { parseType } from './sql-types.ts';

export { splitStatements, statementsOf, UnsupportedSqlError } from './sql-lexer.ts';

const raw = (text: string): Token => ({ kind: 'raw', text, at: -1 });
const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

const STARTS = new Set(['SELECT', 'WITH', 'CREATE', 'DROP', 'ALTER', 'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'TRUNCATE', 'BEGIN', 'COMMIT', 'ROLLBACK']);

const UNSUPPORTED: [RegExp, string][] = [
  [/^CREATE (OR REPLACE )?(TEMP |TEMPORARY )?(AGGREGATE )?(TABLE )?FUNCTION\b/, 'CREATE FUNCTION (user-defined functions)'],
  [/^CREATE (OR REPLACE )?PROCEDURE\b/, 'CREATE PROCEDURE'],
  [/^CREATE (OR REPLACE )?MATERIALIZED VIEW\b/, 'CREATE MATERIALIZED VIEW'],
  [/^CREATE (OR REPLACE )?(EXTERNAL|SNAPSHOT) TABLE\b/, 'CREATE EXTERNAL or SNAPSHOT TABLE'],
  [/^CREATE (OR REPLACE )?(MODEL|ROW ACCESS POLICY|SEARCH INDEX|VECTOR INDEX)\b/, 'CREATE MODEL, row access policies and indexes'],
  [/\bFOR SYSTEM_TIME AS OF\b/, 'FOR SYSTEM_TIME AS OF (time travel)'],
  [/\bML \. \w+/, 'BigQuery ML functions'],
  [/^BEGIN (?!TRANSACTION$)/, 'BEGIN … END blocks (procedural scripting)'],
  [/^MERGE\b.*\bTHEN INSERT ROW\b/, 'MERGE … INSERT ROW (name the columns: INSERT (…) VALUES (…))'],
];

/** The statement's words and punctuation, strings masked, single-spaced and upper-cased. */
const codeOf = (ts: Token[]) => ts.filter((t) => t.kind !== 'space').map((t) => (t.kind === 'string' ? "''" : t.kind === 'path' ? 'x' : t.text.toUpperCase())).join(' ');

function refuse(ts: Token[]): void {
  const first = ts[skip(ts, 0)];
  const word = first?.kind === 'word' ? first.text.toUpperCase() : first?.text ?? '';
  if (!STARTS.has(word) && word !== '(') {
    const what = ['DECLARE', 'SET', 'IF', 'LOOP', 'WHILE', 'REPEAT', 'FOR', 'CALL', 'EXECUTE', 'RAISE', 'RETURN', 'BREAK', 'CONTINUE', 'LEAVE', 'ITERATE', 'END', 'EXCEPTION', 'ASSERT'].includes(word)
      ? `procedural scripting (${word})` : `${word} statements`;
    throw new UnsupportedSqlError(`the emulator does not run ${what}`);
  }
  const code = codeOf(ts);
  for (const [re, what] of UNSUPPORTED) if (re.test(code)) throw new UnsupportedSqlError(`the emulator does not run ${what}`);
}

/** Remove every `OPTIONS (…)`: descriptions, labels and the like have no DuckDB meaning. */
function dropOptions(ts: Token[]): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < ts.length; i++) {
    const open = skip(ts, i + 1);
    if (isWord(ts[i], 'OPTIONS') && isOp(ts[open], '(')) i = closeOf(ts, open);
    else out.push(ts[i]);
  }
  return out;
}

/** The end (exclusive) of a table or dataset name starting at `i`: a path, or words joined by dots. */
function nameEnd(ts: Token[], i: number): number {
  let j = i + 1;
  while (isOp(ts[j], '.') && (ts[j + 1]?.kind === 'word' || ts[j + 1]?.kind === 'path')) j += 2;
  return j;
}

/** The index after `CREATE [OR REPLACE] [TEMP] TABLE [IF NOT EXISTS]`-style keywords. */
function afterKeywords(ts: Token[], from: number, words: string[]): number {
  let i = skip(ts, from);
  while (ts[i]?.kind === 'word' && words.includes(ts[i].text.toUpperCase())) i = skip(ts, i + 1);
  return i;
}

/** A column definition: name, BigQuery type, then NOT NULL and DEFAULT as DuckDB has them. */
function columnDef(ts: Token[], from: number, to: number, ctx: RenderContext): string | null {
  const at = skip(ts, from, to);
  if (isWord(ts[at], 'PRIMARY', 'FOREIGN', 'CONSTRAINT')) return null;
  const type = parseType(ts, at + 1, to);
  let out = `${render(ts, at, at + 1, ctx)} ${type.duck}`;
  const not = findTop(ts, type.next, to, 'NOT');
  if (not >= 0 && isWord(ts[skip(ts, not + 1, to)], 'NULL')) out += ' NOT NULL';
  const dflt = findTop(ts, type.next, to, 'DEFAULT');
  if (dflt >= 0) out += ` DEFAULT ${render(ts, dflt + 1, to, ctx).trim()}`;
  return out;
}

function createTable(ts: Token[], ctx: RenderContext): string[] {
  const name = afterKeywords(ts, 0, ['CREATE', 'OR', 'REPLACE', 'TEMP', 'TEMPORARY', 'TABLE', 'IF', 'NOT', 'EXISTS']);
  const end = nameEnd(ts, name);
  let head = render(ts, 0, end, ctx);
  let i = skip(ts, end);
  const columns = isOp(ts[i], '(');
  if (columns) {
    const close = closeOf(ts, i);
    const cols = splitTop(ts, i + 1, close).map(([a, b]) => columnDef(ts, a, b, ctx)).filter((c) => c !== null);
    head += ` (${cols.join(', ')})`;
    i = close + 1;
  }
  const as = findTop(ts, i, ts.length, 'AS');
  const source = findTop(ts, i, as < 0 ? ts.length : as, 'LIKE', 'COPY', 'CLONE');
  if (source >= 0) {
    const from = skip(ts, source + 1);
    const table = render(ts, from, nameEnd(ts, from), ctx);
    return [`${head} AS SELECT * FROM ${table}${isWord(ts[source], 'LIKE') ? ' LIMIT 0' : ''}`];
  }
  // What lies between the name (or columns) and AS is PARTITION BY, CLUSTER BY, DEFAULT COLLATE.
  if (as < 0) return [head];
  if (!columns) return [`${head} ${render(ts, as, ts.length, ctx)}`];
  // DuckDB has no column list with AS: create the table, then fill it (one transaction, see engine.ts).
  if (findTop(ts, 0, name, 'NOT') >= 0) throw new UnsupportedSqlError('the emulator does not run CREATE TABLE IF NOT EXISTS with both a column list and AS');
  return [head, `INSERT INTO ${render(ts, name, end, ctx)} ${render(ts, as + 1, ts.length, ctx).trim()}`];
}

/** CREATE / DROP / ALTER SCHEMA (or DATASET): `p.d` names dataset `d`. */
function schemaStatement(ts: Token[], ctx: RenderContext): string {
  const verb = ts[skip(ts, 0)].text.toUpperCase();
  const name = afterKeywords(ts, 0, ['CREATE', 'DROP', 'ALTER', 'SCHEMA', 'DATASET', 'IF', 'NOT', 'EXISTS']);
  const end = nameEnd(ts, name);
  const head = render(ts, 0, name, ctx).replace(/\bDATASET\b/i, 'SCHEMA');
  const dataset = quoteIdent(datasetOf(ts.slice(name, end)));
  if (verb === 'ALTER') return 'SELECT 1 LIMIT 0';
  if (verb === 'DROP') return `${head}${dataset}${render(ts, end, ts.length, ctx)}`;
  return `${head}${dataset}`;
}

const datasetOf = (name: Token[]) => {
  const parts = name.flatMap((t) => (t.kind === 'path' ? t.parts! : t.kind === 'word' ? [t.text] : []));
  return parts[parts.length - 1];
};

/** ALTER TABLE|VIEW name action, action…: one DuckDB statement per action. */
function alterTable(ts: Token[], ctx: RenderContext): string[] {
  const kw = afterKeywords(ts, 0, ['ALTER', 'TABLE', 'VIEW', 'IF', 'EXISTS']);
  const end = nameEnd(ts, kw);
  const head = render(ts, 0, end, ctx);
  const name = render(ts, kw, end, ctx);
  return splitTop(ts, end, ts.length).map(([a, b]) => {
    const sig = ts.slice(a, b).filter((t) => t.kind !== 'space');
    const words = sig.map((t) => t.text.toUpperCase());
    const setAt = words.indexOf('SET');
    if (setAt >= 0 && ['OPTIONS', 'DEFAULT'].includes(words[setAt + 1]) && (words[setAt + 1] === 'OPTIONS' || words[setAt + 2] === 'COLLATE')) return `SELECT * FROM ${name} LIMIT 0`;
    if (words[0] === 'ADD' && words[1] === 'COLUMN') {
      const col = afterKeywords(ts, a, ['ADD', 'COLUMN', 'IF', 'NOT', 'EXISTS']);
      const type = parseType(ts, col + 1, b);
      return `${head} ${render(ts, a, col + 1, ctx).trim()} ${type.duck}`;
    }
    const dataType = findTop(ts, a, b, 'TYPE');
    if (words[0] === 'ALTER' && dataType >= 0) return `${head} ${render(ts, a, dataType + 1, ctx).trim()} ${parseType(ts, dataType + 1, b).duck}`;
    return `${head} ${render(ts, a, b, ctx).trim()}`;
  });
}

/**
 * A DDL statement's `OPTIONS(name = value, …)`: strings as strings, `[('k', 'v'), …]` as pairs,
 * anything else as its text.
 */
export function optionsOf(statement: string): Record<string, unknown> {
  const ts = tokenize(statement);
  const at = ts.findIndex((t, i) => isWord(t, 'OPTIONS') && isOp(ts[skip(ts, i + 1)], '('));
  if (at < 0) return {};
  const open = skip(ts, at + 1);
  const value = (from: number, to: number): unknown => {
    const sig = ts.slice(from, to).filter((t) => t.kind !== 'space');
    if (sig.length === 1 && sig[0].kind === 'string') return stringValue(sig[0]);
    if (isOp(sig[0], '[')) {
      const start = skip(ts, from);
      return splitTop(ts, start + 1, closeOf(ts, start, to)).map(([a, b]) => {
        const paren = skip(ts, a, b);
        return isOp(ts[paren], '(') ? splitTop(ts, paren + 1, closeOf(ts, paren, b)).map(([x, y]) => value(x, y)) : value(a, b);
      });
    }
    return sig.map((t) => t.text).join(' ');
  };
  return Object.fromEntries(splitTop(ts, open + 1, closeOf(ts, open)).map(([a, b]) => {
    const name = skip(ts, a, b);
    const eq = skip(ts, name + 1, b);
    return [ts[name].text.toLowerCase(), value(eq + 1, b)];
  }));
}

export interface Translated {
  /** DuckDB statements: one, or several for a statement DuckDB has no single form of. */
  parts: string[];
  sql: string;
  /** The named parameters the statement uses, and how many positional ones. */
  params: string[];
  positional: number;
}

/**
 * Translate one statement; `sql` joins its parts with `;` (an ALTER TABLE with several actions,
 * a CREATE TABLE with columns and AS). `paramTypes` types the job's query parameters.
 */
export function translateStatement(statement: string, paramTypes?: RenderContext['paramTypes']): Translated {
  const original = tokenize(statement);
  refuse(original);
  const ctx = newContext(paramTypes);
  const head = codeOf(original.slice(0, 12));
  let parts: string[];
  if (/^ALTER (TABLE|VIEW)\b/.test(head)) parts = alterTable(original, ctx);
  else {
    const ts = dropOptions(original);
    if (/^CREATE (OR REPLACE )?(TEMP |TEMPORARY )?TABLE\b/.test(head)) parts = createTable(ts, ctx);
    else if (/^(CREATE|DROP|ALTER) (SCHEMA|DATASET)\b/.test(head)) parts = [schemaStatement(ts, ctx)];
    else {
      // BigQuery's optional keywords, which DuckDB requires: MERGE [INTO], INSERT [INTO], DELETE [FROM].
      const first = skip(ts, 0);
      const next = ts[skip(ts, first + 1)];
      if (isWord(ts[first], 'MERGE', 'INSERT') && !isWord(next, 'INTO')) ts.splice(first + 1, 0, raw(' INTO'));
      if (isWord(ts[first], 'DELETE') && !isWord(next, 'FROM')) ts.splice(first + 1, 0, raw(' FROM'));
      parts = [render(ts, 0, ts.length, ctx)];
    }
  }
  return { parts, sql: parts.join(';\n'), params: [...ctx.used], positional: ctx.positional };
}

/** Translate one statement to DuckDB SQL. */
export const translate = (statement: string): string => translateStatement(statement).sql;

export type StatementType = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE' | 'MERGE' | 'CREATE_TABLE' | 'CREATE_TABLE_AS_SELECT' | 'CREATE_VIEW'
  | 'DROP_TABLE' | 'DROP_VIEW' | 'CREATE_SCHEMA' | 'DROP_SCHEMA' | 'ALTER_SCHEMA' | 'TRUNCATE_TABLE' | 'ALTER_TABLE' | 'ALTER_VIEW' | 'SCRIPT'
  | 'BEGIN_TRANSACTION' | 'COMMIT_TRANSACTION' | 'ROLLBACK_TRANSACTION';

export interface Classified {
  type: StatementType;
  /** For table DDL and DML: the [dataset, table] it targets. */
  target?: [string, string];
  /** For schema DDL: the dataset. */
  dataset?: string;
  /** A CREATE TEMP TABLE: the table lives as long as the script. */
  temporary?: boolean;
}

/** Leading keywords, by the statement type they make (tested in order, on the keywords alone). */
const TYPES: [RegExp, StatementType][] = [
  [/^CREATE (OR REPLACE )?(TEMP |TEMPORARY )?TABLE/, 'CREATE_TABLE'],
  [/^CREATE (OR REPLACE )?VIEW/, 'CREATE_VIEW'],
  [/^DROP TABLE/, 'DROP_TABLE'],
  [/^DROP VIEW/, 'DROP_VIEW'],
  [/^INSERT/, 'INSERT'],
  [/^UPDATE/, 'UPDATE'],
  [/^DELETE/, 'DELETE'],
  [/^MERGE/, 'MERGE'],
  [/^TRUNCATE TABLE/, 'TRUNCATE_TABLE'],
  [/^ALTER TABLE/, 'ALTER_TABLE'],
  [/^ALTER VIEW/, 'ALTER_VIEW'],
  [/^CREATE (SCHEMA|DATASET)/, 'CREATE_SCHEMA'],
  [/^DROP (SCHEMA|DATASET)/, 'DROP_SCHEMA'],
  [/^ALTER (SCHEMA|DATASET)/, 'ALTER_SCHEMA'],
  [/^BEGIN( TRANSACTION)?$/, 'BEGIN_TRANSACTION'],
  [/^COMMIT( TRANSACTION)?$/, 'COMMIT_TRANSACTION'],
  [/^ROLLBACK( TRANSACTION)?$/, 'ROLLBACK_TRANSACTION'],
];

const LEAD = new Set(['CREATE', 'OR', 'REPLACE', 'TEMP', 'TEMPORARY', 'TABLE', 'VIEW', 'SCHEMA', 'DATASET', 'IF', 'NOT', 'EXISTS', 'DROP', 'ALTER',
  'INSERT', 'INTO', 'UPDATE', 'DELETE', 'FROM', 'MERGE', 'TRUNCATE', 'BEGIN', 'COMMIT', 'ROLLBACK', 'TRANSACTION']);

/** What a statement is (as BigQuery's `statementType` names it) and which table or dataset it targets. */
export function classify(sql: string): Classified {
  const ts = tokenize(sql).filter((t) => t.kind !== 'space');
  let i = 0;
  while (ts[i]?.kind === 'word' && LEAD.has(ts[i].text.toUpperCase())) i++;
  const lead = ts.slice(0, i).map((t) => t.text.toUpperCase()).join(' ');
  const type = TYPES.find(([re]) => re.test(lead))?.[1];
  if (!type) return { type: 'SELECT' };
  const parts = (ts[i] ? ts.slice(i, nameEnd(ts, i)) : []).flatMap((t) => (t.kind === 'path' ? t.parts! : t.kind === 'word' ? [t.text] : []));
  if (type.endsWith('_SCHEMA')) return { type, dataset: parts[parts.length - 1] };
  if (type.endsWith('_TRANSACTION')) return { type };
  const target: [string, string] | undefined = parts.length >= 2 ? [parts[parts.length - 2], parts[parts.length - 1]] : undefined;
  const temporary = /^CREATE (OR REPLACE )?TEMP/.test(lead) ? { temporary: true } : {};
  if (type === 'CREATE_TABLE' && findTop(ts, i, ts.length, 'AS') >= 0) return { type: 'CREATE_TABLE_AS_SELECT', target, ...temporary };
  return { type, target, ...temporary };
}

/** DML statements report affected rows. */
export const isDml = (t: StatementType) => t === 'INSERT' || t === 'UPDATE' || t === 'DELETE' || t === 'MERGE';
