/**
 * Renders BigQuery tokens as DuckDB SQL, rewriting what differs inside expressions: literals
 * (strings, FLOAT64 decimals, typed `DATE '…'`), parameters, table paths, casts, `STRUCT(…)`,
 * `ARRAY<T>[…]`, `arr[OFFSET(i)]`, `* EXCEPT (…)`, `UNNEST(…) AS x` and `IN UNNEST(…)`, and the
 * functions in sql-functions.ts. Anything else renders as written.
 */
import { FUNCTIONS, type Call } from './sql-functions.ts';
import { closeOf, isOp, isWord, skip, splitTop, UnsupportedSqlError, type Token } from './sql-lexer.ts';
import { duckScalarType, isTypeName, parseType } from './sql-types.ts';

export interface RenderContext {
  /** DuckDB types of the job's query parameters, by name (`@x`) or position (`?`). */
  paramTypes?: Record<string, string> | string[];
  /** Filled while rendering: the named parameters used, and how many positional ones. */
  used: Set<string>;
  positional: number;
}

export const newContext = (paramTypes?: RenderContext['paramTypes']): RenderContext => ({ paramTypes, used: new Set(), positional: 0 });

const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** A BigQuery string literal as DuckDB's: single quotes, no backslash escapes. */
export function stringLiteral(token: string): string {
  const prefix = /^[rRbB]*/.exec(token)![0];
  const text = token.slice(prefix.length);
  const body = text.startsWith("'''") || text.startsWith('"""') ? text.slice(3, -3) : text.slice(1, -1);
  const value = /r/i.test(prefix) ? body : body.replace(/\\(.)/gs, (_, ch: string) => ({ n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"' } as Record<string, string>)[ch] ?? ch);
  const literal = `'${value.replace(/'/g, "''")}'`;
  return /b/i.test(prefix) ? `CAST(${literal} AS BLOB)` : literal;
}

/** The unquoted value of a string token (for format strings and time zones known at translation). */
export const stringValue = (t: Token | undefined): string | undefined => (t?.kind === 'string' ? stringLiteral(t.text).slice(1, -1).replace(/''/g, "'") : undefined);

/** A path as DuckDB names it: `p.d.t` is table `t` of schema `d`; shorter paths stay whole. */
const pathName = (parts: string[]) => (parts.length >= 3 ? parts.slice(-2) : parts).map(quoteIdent).join('.');

/** Tokens [from, to) as DuckDB SQL. */
export function render(ts: Token[], from: number, to: number, ctx: RenderContext): string {
  let out = '';
  for (let i = from; i < to;) {
    const hit = special(ts, i, to, ctx);
    if (hit) {
      out += hit.text;
      i = hit.next;
    } else {
      out += plain(ts[i], ctx);
      i++;
    }
  }
  return out;
}

function plain(t: Token, ctx: RenderContext): string {
  switch (t.kind) {
    case 'space': return /^\s*$/.test(t.text) ? t.text : ' ';
    case 'string': return stringLiteral(t.text);
    case 'path': return pathName(t.parts!);
    // A literal with a decimal point is FLOAT64 in BigQuery, DECIMAL in DuckDB.
    case 'number': return t.text.includes('.') && !/^0x/i.test(t.text) ? `CAST(${t.text} AS DOUBLE)` : t.text;
    case 'param': {
      if (t.text.startsWith('@@')) throw new UnsupportedSqlError(`the emulator does not run system variables (${t.text})`);
      const types = ctx.paramTypes;
      if (t.text === '?') {
        const type = Array.isArray(types) ? types[ctx.positional] : undefined;
        ctx.positional++;
        return type ? `CAST(? AS ${type})` : '?';
      }
      const name = t.text.slice(1);
      ctx.used.add(name);
      const type = types && !Array.isArray(types) ? types[name] : undefined;
      return type ? `CAST($${name} AS ${type})` : `$${name}`;
    }
    default: return t.text;
  }
}

const NOT_ALIAS = new Set(['WHERE', 'ON', 'USING', 'JOIN', 'LEFT', 'RIGHT', 'INNER', 'CROSS', 'FULL', 'GROUP', 'ORDER', 'LIMIT', 'UNION', 'EXCEPT',
  'INTERSECT', 'WINDOW', 'QUALIFY', 'HAVING', 'WITH', 'AND', 'OR', 'THEN', 'WHEN', 'ELSE', 'END', 'AS', 'NATURAL', 'OFFSET']);

type Hit = { text: string; next: number } | null;

function special(ts: Token[], i: number, to: number, ctx: RenderContext): Hit {
  const t = ts[i];
  const n = skip(ts, i + 1, to);
  const next = ts[n];
  const sub = (a: number, b: number) => render(ts, a, b, ctx);
  if (t.kind === 'op' && t.text === '[' && isWord(next, 'OFFSET', 'SAFE_OFFSET', 'ORDINAL', 'SAFE_ORDINAL') && isOp(ts[skip(ts, n + 1, to)], '(')) {
    const open = skip(ts, n + 1, to);
    const close = closeOf(ts, open, to);
    const end = skip(ts, close + 1, to);
    if (!isOp(ts[end], ']')) return null;
    const index = sub(open + 1, close);
    return { text: /OFFSET/i.test(next.text) ? `[(${index}) + 1]` : `[${index}]`, next: end + 1 };
  }
  if (t.kind === 'op' && t.text === '*' && isWord(next, 'EXCEPT') && isOp(ts[skip(ts, n + 1, to)], '(')) return { text: '* EXCLUDE', next: n + 1 };
  if (t.kind !== 'word') return null;
  const word = t.text.toUpperCase();
  if (word === 'SELECT' && isWord(next, 'AS') && isWord(ts[skip(ts, n + 1, to)], 'STRUCT', 'VALUE')) {
    throw new UnsupportedSqlError(`the emulator does not run SELECT AS ${ts[skip(ts, n + 1, to)].text.toUpperCase()}`);
  }
  if (word === 'SAFE' && isOp(next, '.') && ts[n + 1]?.kind === 'word') {
    // SAFE.f(…): NULL where f would fail.
    const open = skip(ts, n + 2, to);
    if (!isOp(ts[open], '(')) return null;
    const close = closeOf(ts, open, to);
    const inner = special(ts, n + 1, close + 1, ctx)?.text ?? `${ts[n + 1].text}(${sub(open + 1, close)})`;
    return { text: `try(${inner})`, next: close + 1 };
  }
  // Typed literals: DATE '…', TIMESTAMP '…', NUMERIC '…', JSON '…'.
  if (next?.kind === 'string' && isTypeName(word) && word !== 'INTERVAL') return { text: `CAST(${stringLiteral(next.text)} AS ${duckScalarType(word)})`, next: n + 1 };
  if ((word === 'ARRAY' || word === 'STRUCT') && isOp(next, '<')) {
    const type = parseType(ts, i, to);
    const body = skip(ts, type.next, to);
    if (word === 'ARRAY' && isOp(ts[body], '[')) {
      const close = closeOf(ts, body, to);
      return { text: `CAST(${sub(body, close + 1)} AS ${type.duck})`, next: close + 1 };
    }
    if (word === 'STRUCT' && isOp(ts[body], '(')) {
      const close = closeOf(ts, body, to);
      return { text: `CAST(ROW(${sub(body + 1, close)}) AS ${type.duck})`, next: close + 1 };
    }
    return { text: type.duck, next: type.next };
  }
  if (word === 'IN' && isWord(next, 'UNNEST') && isOp(ts[skip(ts, n + 1, to)], '(')) {
    const open = skip(ts, n + 1, to);
    const close = closeOf(ts, open, to);
    return { text: `IN (SELECT UNNEST(${sub(open + 1, close)}))`, next: close + 1 };
  }
  if ((word === 'CURRENT_DATETIME' || word === 'CURRENT_TIME') && !isOp(next, '(')) return { text: FUNCTIONS[word]!(callOf(word, ts, [], ctx)), next: i + 1 };
  if (!isOp(next, '(')) return null;
  const close = closeOf(ts, n, to);
  const ranges = splitTop(ts, n + 1, close);
  if (word === 'CAST' || word === 'SAFE_CAST') {
    const [from, end] = ranges[0] ?? [n + 1, close];
    const as = lastTop(ts, from, end, 'AS');
    if (as < 0 || ranges.length !== 1) return null;
    const type = parseType(ts, as + 1, end);
    if (isWord(ts[skip(ts, type.next, end)], 'FORMAT')) throw new UnsupportedSqlError('the emulator does not run CAST … FORMAT');
    return { text: `${word === 'CAST' ? 'CAST' : 'TRY_CAST'}(${sub(from, as).trim()} AS ${type.duck})`, next: close + 1 };
  }
  if (word === 'STRUCT') return { text: structOf(ts, ranges, sub, inArrayLiteral(ts, i)), next: close + 1 };
  if (word === 'UNNEST') return unnestOf(ts, n, close, to, sub);
  const rewrite = FUNCTIONS[word];
  if (!rewrite) return null;
  return { text: rewrite(callOf(word, ts, ranges, ctx)), next: close + 1 };
}

function callOf(name: string, ts: Token[], ranges: [number, number][], ctx: RenderContext): Call {
  const trimmed = ranges.map(([a, b]) => {
    let from = skip(ts, a, b);
    let end = b;
    while (end > from && ts[end - 1].kind === 'space') end--;
    return ts.slice(from, end);
  });
  return {
    name,
    raw: trimmed,
    args: trimmed.map((tokens) => render(tokens, 0, tokens.length, ctx)),
    render: (tokens) => render(tokens, 0, tokens.length, ctx),
  };
}

/** The last word at bracket depth 0 in [from, to). */
function lastTop(ts: Token[], from: number, to: number, word: string): number {
  let depth = 0;
  let found = -1;
  for (let i = from; i < to; i++) {
    const t = ts[i];
    if (isOp(t, '(') || isOp(t, '[')) depth++;
    else if (isOp(t, ')') || isOp(t, ']')) depth--;
    else if (depth === 0 && isWord(t, word)) found = i;
  }
  return found;
}

/** Whether token `i` stands directly inside `[…]` (an array literal's element). */
function inArrayLiteral(ts: Token[], i: number): boolean {
  let depth = 0;
  for (let j = i - 1; j >= 0; j--) {
    const t = ts[j];
    if (isOp(t, ')') || isOp(t, ']')) depth++;
    else if (isOp(t, '(') || isOp(t, '[')) {
      if (depth === 0) return t.text === '[';
      depth--;
    }
  }
  return false;
}

/**
 * STRUCT(a AS x, t.b, 1) → struct_pack(x := a, b := t.b, _field_3 := 1), names as BigQuery
 * infers them. An array element with no names at all is an unnamed ROW, which DuckDB fits to
 * the other elements' names by position, as BigQuery does.
 */
function structOf(ts: Token[], ranges: [number, number][], sub: (a: number, b: number) => string, element: boolean): string {
  if (!ranges.length) throw new UnsupportedSqlError('the emulator does not run an empty STRUCT()');
  let named = false;
  const fields = ranges.map(([from, end], k) => {
    const as = lastTop(ts, from, end, 'AS');
    if (as >= 0) {
      const name = ts[skip(ts, as + 1, end)];
      named = true;
      return `${quoteIdent(name.kind === 'path' ? name.parts!.join('.') : name.text)} := ${sub(from, as).trim()}`;
    }
    const sig = ts.slice(from, end).filter((x) => x.kind !== 'space');
    const last = sig[sig.length - 1];
    const isPath = sig.every((x, j) => (j % 2 === 0 ? x.kind === 'word' || x.kind === 'path' : isOp(x, '.')));
    named ||= isPath;
    const name = isPath && last ? (last.kind === 'path' ? last.parts![last.parts!.length - 1] : last.text) : `_field_${k + 1}`;
    return `${quoteIdent(name)} := ${sub(from, end).trim()}`;
  });
  return named || !element ? `struct_pack(${fields.join(', ')})` : `row(${ranges.map(([a, b]) => sub(a, b).trim()).join(', ')})`;
}

/**
 * UNNEST(arr) [AS] x: BigQuery's x is the element, which DuckDB needs named as a column too.
 * Without an alias, an array of structs unnests into the structs' fields, as in BigQuery.
 */
function unnestOf(ts: Token[], open: number, close: number, to: number, sub: (a: number, b: number) => string): Hit {
  const array = sub(open + 1, close);
  let text = `(SELECT UNNEST(${array}, max_depth := 2))`;
  let at = skip(ts, close + 1, to);
  if (isWord(ts[at], 'AS')) at = skip(ts, at + 1, to);
  const alias = ts[at];
  let next = close + 1;
  if (alias && (alias.kind === 'path' || (alias.kind === 'word' && !NOT_ALIAS.has(alias.text.toUpperCase())))) {
    const name = alias.kind === 'path' ? quoteIdent(alias.parts!.join('.')) : alias.text;
    text = `UNNEST(${array}) AS ${name}(${name})`;
    next = at + 1;
  }
  const w = skip(ts, next, to);
  if (isWord(ts[w], 'WITH') && isWord(ts[skip(ts, w + 1, to)], 'OFFSET')) throw new UnsupportedSqlError('the emulator does not run UNNEST … WITH OFFSET');
  return { text, next };
}
