/**
 * BigQuery Standard SQL to DuckDB, for the subset the emulator runs. The translation is
 * lexical: strings, comments and quoted identifiers are kept whole, and only what lies outside
 * them is rewritten.
 * - Backtick identifiers: `` `p.d.t` ``, `` `p`.`d`.`t` ``, `` `d.t` `` and `` `d`.`t` `` name
 *   table `t` in dataset `d` (a DuckDB schema); the project is dropped. A single `` `x` `` is a
 *   quoted identifier.
 * - DDL clauses DuckDB has no use for: `OPTIONS(...)`, `PARTITION BY …` and `CLUSTER BY …`
 *   between a CREATE TABLE's name and its `AS`.
 * - BigQuery's type names (INT64, FLOAT64, BYTES…) exist as DuckDB type aliases that the
 *   engine creates, and a few functions as macros (see engine.ts).
 * What it cannot run fails the job with `invalidQuery`, naming the construct.
 */

export class UnsupportedSqlError extends Error {
  override readonly name = 'UnsupportedSqlError';
}

type Token = { kind: 'code' | 'string' | 'comment' | 'ident'; text: string };

/** Split SQL into code, string literals, comments and backtick identifiers. */
function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let code = '';
  const flush = () => { if (code) out.push({ kind: 'code', text: code }); code = ''; };
  for (let i = 0; i < sql.length;) {
    const c = sql[i];
    const next = sql[i + 1];
    if (c === '-' && next === '-' || c === '#') {
      const end = sql.indexOf('\n', i);
      const stop = end < 0 ? sql.length : end;
      flush();
      out.push({ kind: 'comment', text: sql.slice(i, stop) });
      i = stop;
    } else if (c === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      const stop = end < 0 ? sql.length : end + 2;
      flush();
      out.push({ kind: 'comment', text: sql.slice(i, stop) });
      i = stop;
    } else if (c === "'" || c === '"') {
      // r'…' (raw) and b'…' (bytes) prefixes belong to the literal.
      const prefix = /(?:^|[^\w])([rRbB]{1,2})$/.exec(code)?.[1] ?? '';
      code = code.slice(0, code.length - prefix.length);
      const triple = sql.startsWith(c.repeat(3), i);
      const quote = triple ? c.repeat(3) : c;
      let j = i + quote.length;
      for (; j < sql.length; j++) {
        if (sql[j] === '\\') { j++; continue; }
        if (sql.startsWith(quote, j)) break;
      }
      if (j >= sql.length) throw new UnsupportedSqlError(`unterminated string starting at offset ${i}`);
      flush();
      out.push({ kind: 'string', text: prefix + sql.slice(i, j + quote.length) });
      i = j + quote.length;
    } else if (c === '`') {
      const end = sql.indexOf('`', i + 1);
      if (end < 0) throw new UnsupportedSqlError(`unterminated backtick identifier at offset ${i}`);
      flush();
      out.push({ kind: 'ident', text: sql.slice(i + 1, end) });
      i = end + 1;
    } else {
      code += c;
      i++;
    }
  }
  flush();
  return out;
}

const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** A BigQuery string literal as DuckDB's: single quotes, no backslash escapes. */
function stringLiteral(token: string): string {
  const prefix = /^[rRbB]*/.exec(token)![0];
  const raw = /r/i.test(prefix);
  const text = token.slice(prefix.length);
  const body = text.startsWith("'''") || text.startsWith('"""') ? text.slice(3, -3) : text.slice(1, -1);
  const value = raw ? body : body.replace(/\\(.)/gs, (_, ch: string) => ({ n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"' } as Record<string, string>)[ch] ?? ch);
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * Join adjacent backtick parts (`` `p`.`d`.`t` ``) and dotted ones (`` `p.d.t` ``) into one
 * path, then name it in DuckDB: [dataset, table] or a single identifier.
 */
function identifiers(tokens: Token[]): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.kind !== 'ident') {
      out.push(t);
      continue;
    }
    const parts = t.text.split('.');
    // `a`.`b` and `a`.b: the dot and the next part follow with no space.
    while (tokens[i + 1]?.kind === 'code' && tokens[i + 1].text.startsWith('.')) {
      const rest = tokens[i + 1].text;
      if (rest === '.' && tokens[i + 2]?.kind === 'ident') {
        parts.push(...tokens[i + 2].text.split('.'));
        i += 2;
        continue;
      }
      const m = /^\.([A-Za-z_][\w-]*)/.exec(rest);
      if (!m) break;
      parts.push(m[1]);
      tokens[i + 1] = { kind: 'code', text: rest.slice(m[0].length) };
      if (!tokens[i + 1].text) i++;
    }
    const path = parts.length >= 3 ? parts.slice(-2) : parts;
    out.push({ kind: 'code', text: path.map(quoteIdent).join('.') });
  }
  return out;
}

/** Drop `OPTIONS(...)` (balanced parentheses) wherever it stands in code. */
function dropOptions(code: string): string {
  let out = code;
  for (let m = /\bOPTIONS\s*\(/i.exec(out); m; m = /\bOPTIONS\s*\(/i.exec(out)) {
    let depth = 0;
    let j = m.index + m[0].length - 1;
    for (; j < out.length; j++) {
      if (out[j] === '(') depth++;
      else if (out[j] === ')' && --depth === 0) break;
    }
    out = out.slice(0, m.index) + out.slice(j + 1);
  }
  return out;
}

const UNSUPPORTED: [RegExp, string][] = [
  [/\bCREATE\s+(OR\s+REPLACE\s+)?(TEMP\s+|TEMPORARY\s+)?FUNCTION\b/i, 'CREATE FUNCTION (user-defined functions)'],
  [/\bCREATE\s+(OR\s+REPLACE\s+)?PROCEDURE\b/i, 'CREATE PROCEDURE'],
  [/\bCREATE\s+(OR\s+REPLACE\s+)?MATERIALIZED\s+VIEW\b/i, 'CREATE MATERIALIZED VIEW'],
  [/\bFOR\s+SYSTEM_TIME\s+AS\s+OF\b/i, 'FOR SYSTEM_TIME AS OF (time travel)'],
  [/\bML\.\w+/i, 'BigQuery ML functions'],
  [/\b(DECLARE|BEGIN\s+TRANSACTION|EXECUTE\s+IMMEDIATE|LOOP|WHILE|CALL)\b/i, 'procedural scripting (DECLARE, EXECUTE IMMEDIATE, loops, CALL)'],
];

/** Translate one statement. */
export function translate(sql: string): string {
  const tokens = identifiers(tokenize(sql));
  let text = '';
  for (const t of tokens) {
    // Named query parameters: BigQuery's @name is DuckDB's $name.
    if (t.kind === 'code') text += t.text.replace(/@([A-Za-z_]\w*)/g, '$$$1');
    else if (t.kind === 'string') text += stringLiteral(t.text);
    else text += ' ';
  }
  // Only code is checked and rewritten below; strings were already emitted, so mask them.
  const code = tokens.filter((t) => t.kind === 'code').map((t) => t.text).join(' ');
  for (const [re, what] of UNSUPPORTED) if (re.test(code)) throw new UnsupportedSqlError(`the emulator does not run ${what}`);
  text = dropOptions(text);
  // PARTITION BY / CLUSTER BY between a CREATE TABLE's name and AS (DuckDB has neither).
  text = text.replace(/^(\s*CREATE\s+(?:OR\s+REPLACE\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?[^\s(]+(?:\s*\([^]*?\))?)\s+((?:PARTITION|CLUSTER)\s+BY\s+[^]*?)\s+(AS\s*\(?\s*(?:SELECT|WITH)\b)/i,
    (_, head: string, _clauses: string, tail: string) => `${head} ${tail}`);
  // BigQuery's optional keywords, which DuckDB requires: MERGE [INTO], INSERT [INTO], DELETE [FROM].
  text = text.replace(/^(\s*)(MERGE|INSERT)(\s+)(?!INTO\b)/i, '$1$2$3INTO ').replace(/^(\s*DELETE)(\s+)(?!FROM\b)/i, '$1$2FROM ');
  return text;
}

/** A script's statements, split on semicolons outside strings, comments and identifiers. */
export function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let current = '';
  for (const t of tokenize(sql)) {
    if (t.kind !== 'code') {
      current += t.kind === 'ident' ? `\`${t.text}\`` : t.text;
      continue;
    }
    const pieces = t.text.split(';');
    current += pieces[0];
    for (const piece of pieces.slice(1)) {
      if (current.trim()) statements.push(current.trim());
      current = piece;
    }
  }
  if (current.trim()) statements.push(current.trim());
  return statements;
}

export type StatementType = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE' | 'MERGE' | 'CREATE_TABLE' | 'CREATE_TABLE_AS_SELECT' | 'CREATE_VIEW'
  | 'DROP_TABLE' | 'DROP_VIEW' | 'CREATE_SCHEMA' | 'DROP_SCHEMA' | 'TRUNCATE_TABLE' | 'ALTER_TABLE' | 'SCRIPT';

export interface Classified {
  type: StatementType;
  /** For DDL and DML: the [dataset, table] it targets. */
  target?: [string, string];
}

/** What a statement is (as BigQuery's `statementType` names it) and which table it targets. */
export function classify(sql: string): Classified {
  const code = tokenize(sql).map((t) => (t.kind === 'ident' ? `\`${t.text}\`` : t.kind === 'code' ? t.text : t.kind === 'string' ? "''" : ' ')).join('').trim();
  const name = String.raw`((?:\x60[^\x60]+\x60|[A-Za-z_][\w-]*)(?:\.(?:\x60[^\x60]+\x60|[A-Za-z_][\w-]*))*)`;
  const target = (raw: string | undefined): [string, string] | undefined => {
    if (!raw) return undefined;
    const parts = raw.replace(/\x60/g, '').split('.');
    return parts.length >= 2 ? [parts[parts.length - 2], parts[parts.length - 1]] : undefined;
  };
  const tests: [RegExp, StatementType][] = [
    [new RegExp(String.raw`^CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\s+|TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?${name}[^]*?\bAS\b`, 'i'), 'CREATE_TABLE_AS_SELECT'],
    [new RegExp(String.raw`^CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\s+|TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?${name}`, 'i'), 'CREATE_TABLE'],
    [new RegExp(String.raw`^CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?${name}`, 'i'), 'CREATE_VIEW'],
    [new RegExp(String.raw`^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?${name}`, 'i'), 'DROP_TABLE'],
    [new RegExp(String.raw`^DROP\s+VIEW\s+(?:IF\s+EXISTS\s+)?${name}`, 'i'), 'DROP_VIEW'],
    [new RegExp(String.raw`^INSERT\s+(?:INTO\s+)?${name}`, 'i'), 'INSERT'],
    [new RegExp(String.raw`^UPDATE\s+${name}`, 'i'), 'UPDATE'],
    [new RegExp(String.raw`^DELETE\s+(?:FROM\s+)?${name}`, 'i'), 'DELETE'],
    [new RegExp(String.raw`^MERGE\s+(?:INTO\s+)?${name}`, 'i'), 'MERGE'],
    [new RegExp(String.raw`^TRUNCATE\s+TABLE\s+${name}`, 'i'), 'TRUNCATE_TABLE'],
    [new RegExp(String.raw`^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?${name}`, 'i'), 'ALTER_TABLE'],
    [/^CREATE\s+(?:SCHEMA|DATASET)\b/i, 'CREATE_SCHEMA'],
    [/^DROP\s+(?:SCHEMA|DATASET)\b/i, 'DROP_SCHEMA'],
  ];
  for (const [re, type] of tests) {
    const m = re.exec(code);
    if (m) return { type, target: target(m[1]) };
  }
  return { type: 'SELECT' };
}

/** DML statements report affected rows. */
export const isDml = (t: StatementType) => t === 'INSERT' || t === 'UPDATE' || t === 'DELETE' || t === 'MERGE';
