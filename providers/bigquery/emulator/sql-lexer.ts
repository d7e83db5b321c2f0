/**
 * The lexer under the emulator's SQL translation: BigQuery Standard SQL as tokens that keep
 * their text (whitespace and comments too), so a rewrite touches only what it means to and the
 * rest renders back unchanged. Backtick names joined by dots (`` `p`.`d`.`t` ``, `` `p.d.t` ``)
 * become one `path` token; strings, comments and names are never looked into.
 */

export class UnsupportedSqlError extends Error {
  override readonly name = 'UnsupportedSqlError';
}

export type TokenKind = 'word' | 'path' | 'string' | 'number' | 'param' | 'op' | 'space' | 'raw';

export interface Token {
  kind: TokenKind;
  /** The source text; for `raw`, DuckDB SQL a rewrite produced. */
  text: string;
  /** For `path`: the dotted parts, unquoted. */
  parts?: string[];
  /** Offset in the statement, for error positions. */
  at: number;
}

const OPS2 = new Set(['<=', '>=', '<>', '!=', '||', '::', '=>', '->']);

/** Split SQL into tokens; throws on an unterminated string, comment or backtick name. */
export function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  const push = (kind: TokenKind, at: number, end: number, parts?: string[]) => out.push({ kind, text: sql.slice(at, end), at, ...(parts ? { parts } : {}) });
  for (let i = 0; i < sql.length;) {
    const c = sql[i];
    const rest = sql.slice(i, i + 2);
    let m: RegExpExecArray | null;
    if (/\s/.test(c)) {
      let j = i + 1;
      while (j < sql.length && /\s/.test(sql[j])) j++;
      push('space', i, j);
      i = j;
    } else if (rest === '--' || c === '#') {
      const end = sql.indexOf('\n', i);
      const stop = end < 0 ? sql.length : end;
      push('space', i, stop);
      i = stop;
    } else if (rest === '/*') {
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) throw new UnsupportedSqlError(`unterminated comment starting at offset ${i}`);
      push('space', i, end + 2);
      i = end + 2;
    } else if ((m = /^(?:[rRbB]{1,2})?(['"])/.exec(sql.slice(i, i + 3))) && (m[0].length === 1 || /^[rRbB]{1,2}$/.test(m[0].slice(0, -1)))) {
      const q = m[1];
      const open = i + m[0].length - 1;
      const quote = sql.startsWith(q.repeat(3), open) ? q.repeat(3) : q;
      let j = open + quote.length;
      for (; j < sql.length; j++) {
        if (sql[j] === '\\') { j++; continue; }
        if (sql.startsWith(quote, j)) break;
      }
      if (j >= sql.length) throw new UnsupportedSqlError(`unterminated string starting at offset ${i}`);
      push('string', i, j + quote.length);
      i = j + quote.length;
    } else if (c === '`') {
      const end = sql.indexOf('`', i + 1);
      if (end < 0) throw new UnsupportedSqlError(`unterminated backtick identifier at offset ${i}`);
      push('path', i, end + 1, sql.slice(i + 1, end).split('.'));
      i = end + 1;
    } else if ((m = /^(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)/.exec(sql.slice(i))) && !(c === '.' && /[\w`)\]]$/.test(sql.slice(0, i)))) {
      push('number', i, i + m[0].length);
      i += m[0].length;
    } else if ((m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(sql.slice(i)))) {
      push('word', i, i + m[0].length);
      i += m[0].length;
    } else if ((m = /^(?:@@?[A-Za-z_]\w*|\?)/.exec(sql.slice(i)))) {
      push('param', i, i + m[0].length);
      i += m[0].length;
    } else {
      const len = OPS2.has(rest) ? 2 : 1;
      push('op', i, i + len);
      i += len;
    }
  }
  return joinPaths(out);
}

/** `a`.`b`, `a`.b and `a.b`.c as one path token (no space around the dots, as BigQuery reads them). */
function joinPaths(tokens: Token[]): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.kind !== 'path') {
      out.push(t);
      continue;
    }
    const joined: Token = { ...t, parts: [...t.parts!] };
    while (tokens[i + 1]?.text === '.' && (tokens[i + 2]?.kind === 'path' || tokens[i + 2]?.kind === 'word')) {
      const next = tokens[i + 2];
      joined.parts!.push(...(next.parts ?? [next.text]));
      joined.text += `.${next.text}`;
      i += 2;
    }
    out.push(joined);
  }
  return out;
}

export const isWord = (t: Token | undefined, ...words: string[]) => t?.kind === 'word' && words.includes(t.text.toUpperCase());
export const isOp = (t: Token | undefined, op: string) => t?.kind === 'op' && t.text === op;

/** The index of the next token at or after `i` that is not whitespace (or `to`). */
export function skip(tokens: Token[], i: number, to = tokens.length): number {
  while (i < to && tokens[i].kind === 'space') i++;
  return i;
}

/** The index of the bracket closing the one at `open` (`(`, `[` or `<`); throws when unbalanced. */
export function closeOf(tokens: Token[], open: number, to = tokens.length): number {
  const o = tokens[open].text;
  const c = o === '(' ? ')' : o === '[' ? ']' : '>';
  let depth = 0;
  for (let i = open; i < to; i++) {
    const t = tokens[i];
    if (t.kind !== 'op') continue;
    if (t.text === o) depth++;
    else if (t.text === c && --depth === 0) return i;
    // Inside <…>, only angle brackets count; a stray ( or [ there is not a type.
  }
  throw new UnsupportedSqlError(`unbalanced "${o}" at offset ${tokens[open].at}`);
}

/** Whether token `i` is the `<` of `ARRAY<…>` or `STRUCT<…>` (and not a comparison). */
function typeOpens(tokens: Token[], i: number): boolean {
  if (!isOp(tokens[i], '<')) return false;
  let j = i - 1;
  while (j >= 0 && tokens[j].kind === 'space') j--;
  return isWord(tokens[j], 'ARRAY', 'STRUCT');
}

/** [from, to) ranges split on commas outside brackets (and outside `ARRAY<…>`, `STRUCT<…>`). */
export function splitTop(tokens: Token[], from: number, to: number, sep = ','): [number, number][] {
  const out: [number, number][] = [];
  let depth = 0;
  let start = from;
  for (let i = from; i < to; i++) {
    const t = tokens[i];
    if (t.kind !== 'op') continue;
    if (typeOpens(tokens, i)) i = closeOf(tokens, i, to);
    else if (t.text === '(' || t.text === '[') depth++;
    else if (t.text === ')' || t.text === ']') depth--;
    else if (t.text === sep && depth === 0) {
      out.push([start, i]);
      start = i + 1;
    }
  }
  if (skip(tokens, start, to) < to || out.length) out.push([start, to]);
  return out;
}

/** The index of the first word in `words` at bracket depth 0 in [from, to), or -1. */
export function findTop(tokens: Token[], from: number, to: number, ...words: string[]): number {
  let depth = 0;
  for (let i = from; i < to; i++) {
    const t = tokens[i];
    if (typeOpens(tokens, i)) i = closeOf(tokens, i, to);
    else if (t.kind === 'op' && (t.text === '(' || t.text === '[')) depth++;
    else if (t.kind === 'op' && (t.text === ')' || t.text === ']')) depth--;
    else if (depth === 0 && isWord(t, ...words)) return i;
  }
  return -1;
}

export interface ScriptStatement {
  text: string;
  /** 1-based line and column where the statement starts, as BigQuery reports positions. */
  line: number;
  column: number;
}

/** A script's statements, split on semicolons outside strings, comments and names. */
export function statementsOf(sql: string): ScriptStatement[] {
  const out: ScriptStatement[] = [];
  let start = 0;
  const flush = (end: number) => {
    const raw = sql.slice(start, end);
    const lead = raw.length - raw.trimStart().length;
    const text = raw.trim();
    if (text) {
      const before = sql.slice(0, start + lead);
      const line = before.split('\n').length;
      out.push({ text, line, column: before.length - before.lastIndexOf('\n') });
    }
  };
  for (const t of tokenize(sql)) {
    if (isOp(t, ';')) {
      flush(t.at);
      start = t.at + 1;
    }
  }
  flush(sql.length);
  return out;
}

export const splitStatements = (sql: string): string[] => statementsOf(sql).map((s) => s.text);
