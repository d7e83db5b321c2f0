/**
 * BigQuery functions whose DuckDB counterpart differs in name, argument order or semantics,
 * rewritten at translation time (so their result types are DuckDB's own, and dry runs see
 * them). Functions DuckDB has under the same name and meaning are not listed; a function
 * neither has fails the job with "Function not found: NAME".
 */
import { findTop, isOp, isWord, skip, UnsupportedSqlError, type Token } from './sql-lexer.ts';

export interface Call {
  name: string;
  /** Each argument's tokens, trimmed, and rendered as DuckDB SQL. */
  raw: Token[][];
  args: string[];
  render(tokens: Token[]): string;
}

type Rewrite = (c: Call) => string;

function arity(c: Call, min: number, max = min): void {
  if (c.args.length < min || c.args.length > max) {
    throw new UnsupportedSqlError(`${c.name} takes ${min === max ? min : `${min} to ${max}`} argument${max === 1 ? '' : 's'}, not ${c.args.length}`);
  }
}

const WEEKDAYS = ['SUNDAY', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY'];

/** A date part argument: `MONTH`, `WEEK`, `WEEK(MONDAY)`, `ISOWEEK`. */
function partOf(c: Call, k: number): { part: string; weekday: number } {
  const [w, open, day] = c.raw[k].filter((t) => t.kind !== 'space');
  if (w?.kind !== 'word') throw new UnsupportedSqlError(`${c.name}: argument ${k + 1} must be a date part such as MONTH`);
  const part = w.text.toUpperCase();
  if (part === 'ISOWEEK') return { part: 'WEEK', weekday: 1 };
  const weekday = isOp(open, '(') && day ? WEEKDAYS.indexOf(day.text.toUpperCase()) : 0;
  if (weekday < 0) throw new UnsupportedSqlError(`${c.name}: ${day.text} is not a weekday`);
  return { part, weekday };
}

/** 2000-01-02 was a Sunday: the origin of weeks that start on `weekday`. */
const weekOrigin = (weekday: number) => `DATE '2000-01-0${2 + weekday}'`;

/** DATE_TRUNC and friends keep their argument's type, as BigQuery's do: time_bucket does, date_trunc does not. */
function trunc(x: string, c: Call, k: number): string {
  const { part, weekday } = partOf(c, k);
  switch (part) {
    case 'MICROSECOND': case 'MILLISECOND': case 'SECOND': case 'MINUTE': case 'HOUR': return `date_trunc('${part.toLowerCase()}', ${x})`;
    case 'DAY': return `time_bucket(INTERVAL 1 DAY, ${x})`;
    case 'WEEK': return `time_bucket(INTERVAL 7 DAY, ${x}, ${weekOrigin(weekday)})`;
    case 'MONTH': return `time_bucket(INTERVAL 1 MONTH, ${x})`;
    case 'QUARTER': return `time_bucket(INTERVAL 3 MONTH, ${x})`;
    case 'YEAR': return `time_bucket(INTERVAL 1 YEAR, ${x})`;
    default: throw new UnsupportedSqlError(`${c.name} to ${part} is not supported by the emulator`);
  }
}

const truncate: Rewrite = (c) => {
  arity(c, 2, 3);
  if (c.args.length === 3) return `timezone(${c.args[2]}, ${trunc(`timezone(${c.args[2]}, ${c.args[0]})`, c, 1)})`;
  return trunc(c.args[0], c, 1);
};

/** `INTERVAL n PART` (a *_ADD / *_SUB argument) as a DuckDB interval expression. */
function interval(c: Call): string {
  const tokens = c.raw[1];
  const last = tokens[tokens.length - 1];
  if (!isWord(tokens[0], 'INTERVAL') || last?.kind !== 'word') throw new UnsupportedSqlError(`${c.name}: the second argument must be INTERVAL n PART`);
  const n = c.render(tokens.slice(1, -1));
  const unit = ({ WEEK: '7 DAY', QUARTER: '3 MONTH' } as Record<string, string>)[last.text.toUpperCase()] ?? `1 ${last.text.toUpperCase()}`;
  return `(${n}) * INTERVAL ${unit}`;
}

const shift = (sign: '+' | '-', cast?: string): Rewrite => (c) => {
  arity(c, 2);
  const sum = `(${c.args[0]}) ${sign} ${interval(c)}`;
  return cast ? `CAST(${sum} AS ${cast})` : `(${sum})`;
};

/**
 * DATE_DIFF counts part boundaries. DuckDB's date_diff counts whole weeks, so weeks are counted
 * between the starts of their weeks (BigQuery's start on Sunday unless told otherwise).
 */
const boundaries: Rewrite = (c) => {
  arity(c, 3);
  const { part, weekday } = partOf(c, 2);
  if (part === 'WEEK') {
    const start = (x: string) => `time_bucket(INTERVAL 7 DAY, ${x}, ${weekOrigin(weekday)})`;
    return `(date_diff('day', ${start(c.args[1])}, ${start(c.args[0])}) // 7)`;
  }
  return `date_diff('${part.toLowerCase()}', ${c.args[1]}, ${c.args[0]})`;
};

/** TIMESTAMP_DIFF counts whole elapsed parts. */
const elapsed: Rewrite = (c) => {
  arity(c, 3);
  return `date_sub('${partOf(c, 2).part.toLowerCase()}', ${c.args[1]}, ${c.args[0]})`;
};

/** BigQuery format elements DuckDB's strftime spells differently. */
const FORMAT_ELEMENTS: [string, string][] = [['%F', '%Y-%m-%d'], ['%T', '%H:%M:%S'], ['%D', '%m/%d/%y'], ['%R', '%H:%M'], ['%E4Y', '%Y'], ['%e', '%-d'], ['%k', '%-H'], ['%l', '%-I'], ['%E6S', '%S.%f'], ['%E3S', '%S.%g']];

function formatArg(c: Call, k: number): string {
  const t = c.raw[k];
  if (t.length === 1 && t[0].kind === 'string') {
    let literal = c.args[k];
    if (/%(?:Q|E\*S|J)/.test(literal)) throw new UnsupportedSqlError(`${c.name}: format ${literal} uses an element the emulator does not have`);
    for (const [from, to] of FORMAT_ELEMENTS) literal = literal.split(from).join(to);
    return literal;
  }
  return FORMAT_ELEMENTS.reduce((f, [from, to]) => `replace(${f}, '${from}', '${to}')`, c.args[k]);
}

const format: Rewrite = (c) => {
  arity(c, 2, 3);
  const x = c.args.length === 3 ? `timezone(${c.args[2]}, ${c.args[1]})` : c.args[1];
  return `strftime(${x}, ${formatArg(c, 0)})`;
};

const parse = (cast: string): Rewrite => (c) => {
  arity(c, 2, 3);
  const parsed = `strptime(${c.args[1]}, ${formatArg(c, 0)})`;
  return c.args.length === 3 ? `timezone(${c.args[2]}, ${parsed})` : `CAST(${parsed} AS ${cast})`;
};

/** ARRAY_AGG(x [IGNORE NULLS] [ORDER BY …] [LIMIT n]). */
const arrayAgg: Rewrite = (c) => {
  arity(c, 1);
  const t = c.raw[0];
  const ignore = findTop(t, 0, t.length, 'IGNORE', 'RESPECT');
  const order = findTop(t, 0, t.length, 'ORDER');
  const limit = findTop(t, 0, t.length, 'LIMIT');
  const ends = [ignore, order, limit, t.length].filter((k) => k >= 0);
  const value = c.render(t.slice(0, Math.min(...ends)));
  const orderBy = order >= 0 ? ` ${c.render(t.slice(order, limit >= 0 ? limit : t.length))}` : '';
  let out = `array_agg(${value}${orderBy})`;
  if (ignore >= 0 && isWord(t[ignore], 'IGNORE')) out += ` FILTER (WHERE (${value}) IS NOT NULL)`;
  return limit >= 0 ? `list_slice(${out}, 1, ${c.render(t.slice(limit + 1))})` : out;
};

/** GREATEST and LEAST are NULL when any argument is. */
const nullStrict = (fn: string): Rewrite => (c) => `CASE WHEN ${c.args.map((a) => `(${a}) IS NULL`).join(' OR ')} THEN NULL ELSE ${fn}(${c.args.join(', ')}) END`;

/** REGEXP_EXTRACT returns the first group when the pattern has one, and NULL without a match. */
function regexGroup(c: Call): number {
  const t = c.raw[1];
  return t.length === 1 && t[0].kind === 'string' && /(?<!\\)\((?!\?)/.test(t[0].text) ? 1 : 0;
}

const rename = (fn: string): Rewrite => (c) => `${fn}(${c.args.join(', ')})`;

const EXTRACT_PARTS: Record<string, (x: string) => string> = {
  DAYOFWEEK: (x) => `(extract(dow FROM ${x}) + 1)`,
  WEEK: (x) => `CAST(strftime(${x}, '%U') AS BIGINT)`,
  ISOWEEK: (x) => `extract(week FROM ${x})`,
  ISOYEAR: (x) => `extract(isoyear FROM ${x})`,
  MILLISECOND: (x) => `(extract(millisecond FROM ${x}) % 1000)`,
  MICROSECOND: (x) => `(extract(microsecond FROM ${x}) % 1000000)`,
  DATE: (x) => `CAST(${x} AS DATE)`,
  TIME: (x) => `CAST(${x} AS TIME)`,
  DATETIME: (x) => `CAST(${x} AS TIMESTAMP)`,
};

export const FUNCTIONS: Record<string, Rewrite | undefined> = {
  DATE_TRUNC: truncate, DATETIME_TRUNC: truncate, TIMESTAMP_TRUNC: truncate, TIME_TRUNC: truncate,
  DATE_ADD: shift('+', 'DATE'), DATE_SUB: shift('-', 'DATE'), DATETIME_ADD: shift('+', 'TIMESTAMP'), DATETIME_SUB: shift('-', 'TIMESTAMP'),
  TIMESTAMP_ADD: shift('+'), TIMESTAMP_SUB: shift('-'), TIME_ADD: shift('+', 'TIME'), TIME_SUB: shift('-', 'TIME'),
  DATE_DIFF: boundaries, DATETIME_DIFF: boundaries, TIMESTAMP_DIFF: elapsed, TIME_DIFF: elapsed,
  FORMAT_DATE: format, FORMAT_DATETIME: format, FORMAT_TIMESTAMP: format, FORMAT_TIME: format,
  PARSE_DATE: parse('DATE'), PARSE_DATETIME: parse('TIMESTAMP'), PARSE_TIMESTAMP: parse('TIMESTAMPTZ'), PARSE_TIME: parse('TIME'),
  CURRENT_TIMESTAMP: (c) => (arity(c, 0), 'current_timestamp'),
  CURRENT_DATE: (c) => (arity(c, 0, 1), c.args.length ? `CAST(timezone(${c.args[0]}, current_timestamp) AS DATE)` : 'current_date'),
  CURRENT_DATETIME: (c) => (arity(c, 0, 1), `CAST(${c.args.length ? `timezone(${c.args[0]}, current_timestamp)` : 'current_timestamp'} AS TIMESTAMP)`),
  CURRENT_TIME: (c) => (arity(c, 0, 1), `CAST(CAST(${c.args.length ? `timezone(${c.args[0]}, current_timestamp)` : 'current_timestamp'} AS TIMESTAMP) AS TIME)`),
  TIMESTAMP: (c) => (arity(c, 1, 2), c.args.length === 2 ? `timezone(${c.args[1]}, CAST(${c.args[0]} AS TIMESTAMP))` : `CAST(${c.args[0]} AS TIMESTAMPTZ)`),
  DATE: (c) => {
    arity(c, 1, 3);
    if (c.args.length === 3) return `make_date(${c.args.join(', ')})`;
    return c.args.length === 2 ? `CAST(timezone(${c.args[1]}, ${c.args[0]}) AS DATE)` : `CAST(${c.args[0]} AS DATE)`;
  },
  DATETIME: (c) => {
    arity(c, 1, 6);
    if (c.args.length === 6) return `make_timestamp(${c.args.join(', ')})`;
    if (c.args.length === 2) return c.raw[1].length === 1 && c.raw[1][0].kind === 'string' ? `timezone(${c.args[1]}, ${c.args[0]})` : `(CAST(${c.args[0]} AS DATE) + CAST(${c.args[1]} AS TIME))`;
    return `CAST(${c.args[0]} AS TIMESTAMP)`;
  },
  TIME: (c) => (arity(c, 1, 3), c.args.length === 3 ? `make_time(${c.args.join(', ')})` : `CAST(${c.args[0]} AS TIME)`),
  EXTRACT: (c) => {
    const t = c.raw[0];
    const from = findTop(t, 0, t.length, 'FROM');
    if (c.args.length !== 1 || from < 1) throw new UnsupportedSqlError('EXTRACT needs (part FROM value)');
    const at = findTop(t, from, t.length, 'AT');
    let x = c.render(t.slice(from + 1, at >= 0 ? at : t.length));
    if (at >= 0) x = `timezone(${c.render(t.slice(findTop(t, at, t.length, 'ZONE') + 1))}, ${x})`;
    const part = t[0].text.toUpperCase();
    if (part === 'WEEK' && isOp(t[skip(t, 1)], '(')) throw new UnsupportedSqlError('EXTRACT(WEEK(<weekday>) …) is not supported by the emulator');
    return EXTRACT_PARTS[part]?.(x) ?? `extract(${part.toLowerCase()} FROM ${x})`;
  },
  UNIX_SECONDS: (c) => `CAST(floor(epoch(${c.args[0]})) AS BIGINT)`,
  UNIX_MILLIS: rename('epoch_ms'), UNIX_MICROS: rename('epoch_us'),
  UNIX_DATE: (c) => `date_diff('day', DATE '1970-01-01', ${c.args[0]})`,
  DATE_FROM_UNIX_DATE: (c) => `CAST(DATE '1970-01-01' + (${c.args[0]}) * INTERVAL 1 DAY AS DATE)`,
  TIMESTAMP_SECONDS: rename('to_timestamp'),
  TIMESTAMP_MILLIS: (c) => `CAST(make_timestamp((${c.args[0]}) * 1000) AS TIMESTAMPTZ)`,
  TIMESTAMP_MICROS: (c) => `CAST(make_timestamp(${c.args[0]}) AS TIMESTAMPTZ)`,
  GENERATE_ARRAY: rename('generate_series'),
  GENERATE_DATE_ARRAY: (c) => {
    arity(c, 2, 3);
    const step = c.args.length === 3 ? interval({ ...c, raw: [c.raw[0], c.raw[2]] }) : 'INTERVAL 1 DAY';
    return `list_transform(generate_series(CAST(${c.args[0]} AS TIMESTAMP), CAST(${c.args[1]} AS TIMESTAMP), ${step}), d -> CAST(d AS DATE))`;
  },
  ARRAY_AGG: arrayAgg,
  ARRAY_CONCAT: (c) => c.args.reduce((a, b) => `list_concat(${a}, ${b})`),
  ARRAY_REVERSE: rename('list_reverse'),
  LOGICAL_OR: rename('bool_or'), LOGICAL_AND: rename('bool_and'),
  IFNULL: rename('coalesce'),
  SAFE_DIVIDE: (c) => (arity(c, 2), `CASE WHEN (${c.args[1]}) = 0 THEN NULL ELSE (${c.args[0]}) / (${c.args[1]}) END`),
  SAFE_ADD: (c) => `try((${c.args[0]}) + (${c.args[1]}))`, SAFE_SUBTRACT: (c) => `try((${c.args[0]}) - (${c.args[1]}))`,
  SAFE_MULTIPLY: (c) => `try((${c.args[0]}) * (${c.args[1]}))`, SAFE_NEGATE: (c) => `try(-(${c.args[0]}))`,
  DIV: (c) => (arity(c, 2), `CAST(trunc((${c.args[0]}) / (${c.args[1]})) AS BIGINT)`),
  CONCAT: (c) => `(${c.args.map((a) => `(${a})`).join(' || ')})`,
  GREATEST: nullStrict('greatest'), LEAST: nullStrict('least'),
  REGEXP_CONTAINS: rename('regexp_matches'),
  REGEXP_REPLACE: (c) => (arity(c, 3), `regexp_replace(${c.args.join(', ')}, 'g')`),
  REGEXP_EXTRACT: (c) => (arity(c, 2), `CASE WHEN regexp_matches(${c.args[0]}, ${c.args[1]}) THEN regexp_extract(${c.args[0]}, ${c.args[1]}, ${regexGroup(c)}) END`),
  REGEXP_EXTRACT_ALL: (c) => (arity(c, 2), `regexp_extract_all(${c.args[0]}, ${c.args[1]}, ${regexGroup(c)})`),
  CONTAINS_SUBSTR: (c) => `contains(lower(CAST(${c.args[0]} AS VARCHAR)), lower(${c.args[1]}))`,
  BYTE_LENGTH: rename('strlen'), CHAR_LENGTH: rename('length'), CHARACTER_LENGTH: rename('length'),
  SPLIT: (c) => (arity(c, 1, 2), `string_split(${c.args[0]}, ${c.args[1] ?? "','"})`),
  FORMAT: rename('printf'),
  TO_JSON_STRING: (c) => (arity(c, 1, 2), `CAST(to_json(${c.args[0]}) AS VARCHAR)`),
  TO_JSON: (c) => (arity(c, 1, 2), `to_json(${c.args[0]})`),
  PARSE_JSON: (c) => `CAST(${c.args[0]} AS JSON)`,
  JSON_EXTRACT_SCALAR: (c) => `json_extract_string(${c.args[0]}, ${c.args[1] ?? "'$'"})`,
  JSON_VALUE: (c) => `json_extract_string(${c.args[0]}, ${c.args[1] ?? "'$'"})`,
  JSON_EXTRACT: (c) => `CAST(json_extract(${c.args[0]}, ${c.args[1] ?? "'$'"}) AS VARCHAR)`,
  JSON_QUERY: (c) => `CAST(json_extract(${c.args[0]}, ${c.args[1] ?? "'$'"}) AS VARCHAR)`,
  MD5: (c) => `unhex(md5(${c.args[0]}))`, SHA1: (c) => `unhex(sha1(${c.args[0]}))`, SHA256: (c) => `unhex(sha256(${c.args[0]}))`,
  TO_HEX: (c) => `lower(hex(${c.args[0]}))`, FROM_HEX: rename('unhex'),
  GENERATE_UUID: () => 'CAST(uuid() AS VARCHAR)',
};
