/**
 * DuckDB types and values as BigQuery's REST API carries them. Schemas use the API's type
 * names (INTEGER, FLOAT, BOOLEAN, RECORD…, mode NULLABLE or REPEATED), and cells are strings:
 * an array is `[{ v }]`, a struct `{ f: [{ v }] }`, a TIMESTAMP int64 microseconds (float
 * seconds when the request asks), a DATETIME `YYYY-MM-DDTHH:MM:SS[.ffffff]`, BYTES base64.
 */
import { DuckDBTypeId, type DuckDBType, type DuckDBValue } from '@duckdb/node-api';

/** BigQuery's field in a table schema or a result schema. */
export interface FieldSchema {
  name: string;
  type: string;
  mode?: 'NULLABLE' | 'REQUIRED' | 'REPEATED';
  fields?: FieldSchema[];
  description?: string;
}

/** A REST cell. */
export type Cell = string | null | { v: Cell }[] | { f: { v: Cell }[] };

const INTEGERS = new Set([DuckDBTypeId.TINYINT, DuckDBTypeId.SMALLINT, DuckDBTypeId.INTEGER, DuckDBTypeId.BIGINT, DuckDBTypeId.HUGEINT, DuckDBTypeId.UTINYINT,
  DuckDBTypeId.USMALLINT, DuckDBTypeId.UINTEGER, DuckDBTypeId.UBIGINT, DuckDBTypeId.UHUGEINT, DuckDBTypeId.SQLNULL, DuckDBTypeId.INTEGER_LITERAL]);
const DATETIMES = new Set([DuckDBTypeId.TIMESTAMP, DuckDBTypeId.TIMESTAMP_S, DuckDBTypeId.TIMESTAMP_MS, DuckDBTypeId.TIMESTAMP_NS]);

function typeName(t: DuckDBType): string {
  if (t.alias === 'JSON') return 'JSON';
  if (INTEGERS.has(t.typeId)) return 'INTEGER';
  if (DATETIMES.has(t.typeId)) return 'DATETIME';
  switch (t.typeId) {
    case DuckDBTypeId.BOOLEAN: return 'BOOLEAN';
    case DuckDBTypeId.FLOAT: case DuckDBTypeId.DOUBLE: return 'FLOAT';
    case DuckDBTypeId.DECIMAL: return 'NUMERIC';
    case DuckDBTypeId.BLOB: return 'BYTES';
    case DuckDBTypeId.DATE: return 'DATE';
    case DuckDBTypeId.TIME: case DuckDBTypeId.TIME_TZ: case DuckDBTypeId.TIME_NS: return 'TIME';
    case DuckDBTypeId.TIMESTAMP_TZ: return 'TIMESTAMP';
    case DuckDBTypeId.INTERVAL: return 'INTERVAL';
    default: return 'STRING';
  }
}

/** A DuckDB column type as BigQuery's field: lists are REPEATED, structs RECORD with their fields. */
export function fieldOf(name: string, t: DuckDBType): FieldSchema {
  if (t.typeId === DuckDBTypeId.LIST || t.typeId === DuckDBTypeId.ARRAY) {
    const inner = fieldOf(name, t.valueType);
    // BigQuery has no array of arrays; such a value is carried as JSON text.
    return inner.mode === 'REPEATED' ? { name, type: 'STRING', mode: 'NULLABLE' } : { ...inner, mode: 'REPEATED' };
  }
  if (t.typeId === DuckDBTypeId.STRUCT) return { name, type: 'RECORD', mode: 'NULLABLE', fields: t.entryNames.map((n, i) => fieldOf(n, t.entryTypes[i])) };
  return { name, type: typeName(t), mode: 'NULLABLE' };
}

const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;

const DUCK_TYPES: Record<string, string> = {
  INTEGER: 'BIGINT', INT64: 'BIGINT', FLOAT: 'DOUBLE', FLOAT64: 'DOUBLE', NUMERIC: 'DECIMAL(38, 9)', BIGNUMERIC: 'DECIMAL(38, 9)',
  BOOLEAN: 'BOOLEAN', BOOL: 'BOOLEAN', STRING: 'VARCHAR', BYTES: 'BLOB', DATE: 'DATE', DATETIME: 'TIMESTAMP', TIME: 'TIME',
  TIMESTAMP: 'TIMESTAMPTZ', JSON: 'JSON', GEOGRAPHY: 'VARCHAR', INTERVAL: 'INTERVAL',
};

/** A BigQuery field type as a DuckDB column type, for tables.insert and load schemas. */
export function duckTypeOf(field: FieldSchema): string {
  const type = field.type.toUpperCase();
  const base = type === 'RECORD' || type === 'STRUCT'
    ? `STRUCT(${(field.fields ?? []).map((f) => `${quote(f.name)} ${duckTypeOf(f)}`).join(', ')})`
    : DUCK_TYPES[type];
  if (!base) throw new Error(`field "${field.name}": type ${field.type} is not one the emulator stores`);
  return field.mode === 'REPEATED' ? `${base}[]` : base;
}

const trimDecimal = (s: string) => (s.includes('.') ? s.replace(/\.?0+$/, '') : s);

/** A DuckDB value as a REST cell of `field` (TIMESTAMP as int64 microseconds). */
export function cellOf(value: DuckDBValue, field: FieldSchema): Cell {
  if (value === null || value === undefined) return null;
  if (field.mode === 'REPEATED') {
    const items = (value as { items?: readonly DuckDBValue[] }).items ?? [];
    const one = { ...field, mode: 'NULLABLE' as const };
    return items.map((item) => ({ v: cellOf(item, one) }));
  }
  const v = value as { micros?: bigint; bytes?: Uint8Array; entries?: Record<string, DuckDBValue>; items?: unknown };
  switch (field.type) {
    case 'RECORD': return { f: (field.fields ?? []).map((f) => ({ v: cellOf(v.entries?.[f.name] ?? null, f) })) };
    case 'TIMESTAMP': return String(v.micros ?? value);
    case 'DATETIME': return String(value).replace(' ', 'T');
    case 'BYTES': return Buffer.from(v.bytes ?? []).toString('base64');
    case 'NUMERIC': return trimDecimal(String(value));
    case 'FLOAT': return Number.isNaN(Number(value)) ? 'NaN' : String(value);
    case 'STRING': return v.items !== undefined || v.entries !== undefined ? JSON.stringify(plain(value)) : String(value);
    default: return String(value);
  }
}

/** A nested DuckDB value as plain JSON, for values BigQuery has no type for. */
function plain(value: DuckDBValue): unknown {
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? String(value) : value;
  const v = value as { items?: readonly DuckDBValue[]; entries?: Record<string, DuckDBValue> };
  if (v.items) return v.items.map(plain);
  if (v.entries) return Object.fromEntries(Object.entries(v.entries).map(([k, x]) => [k, plain(x)]));
  return String(value);
}

/** How many bytes a cell carries, for the byte counts in job statistics. */
export const cellSize = (c: Cell): number => (c === null ? 0 : typeof c === 'string' ? c.length : Array.isArray(c) ? c.reduce((n, x) => n + cellSize(x.v), 0) : cellSize(c.f as never));

export type TimestampFormat = 'INT64' | 'FLOAT' | 'ISO8601_STRING';

/**
 * A TIMESTAMP cell as the request asked: int64 microseconds (`formatOptions.useInt64Timestamp`,
 * what the Node client asks for), an ISO 8601 string, or by default float seconds.
 */
export function timestampCell(micros: string, format: TimestampFormat): string {
  if (format === 'INT64') return micros;
  const n = BigInt(micros);
  if (format === 'ISO8601_STRING') {
    const seconds = n / 1_000_000n - (n % 1_000_000n < 0n ? 1n : 0n);
    const fraction = String(n - seconds * 1_000_000n).padStart(6, '0');
    return new Date(Number(seconds) * 1000).toISOString().replace(/\.\d{3}Z$/, `.${fraction}Z`);
  }
  const sign = n < 0n ? '-' : '';
  const abs = n < 0n ? -n : n;
  return `${sign}${abs / 1_000_000n}.${String(abs % 1_000_000n).padStart(6, '0')}`;
}

/** A stored cell with its TIMESTAMPs (at any depth) in the requested form. */
function restCell(c: Cell, field: FieldSchema, format: TimestampFormat): Cell {
  // BigQuery has no NULL array: a REPEATED field reads as an empty one.
  if (c === null) return field.mode === 'REPEATED' ? [] : null;
  if (field.mode === 'REPEATED' && Array.isArray(c)) {
    const one = { ...field, mode: 'NULLABLE' as const };
    return c.map((x) => ({ v: restCell(x.v, one, format) }));
  }
  if (field.type === 'RECORD' && typeof c === 'object' && !Array.isArray(c)) return { f: c.f.map((x, i) => ({ v: restCell(x.v, field.fields![i], format) })) };
  return field.type === 'TIMESTAMP' && typeof c === 'string' ? timestampCell(c, format) : c;
}

/** Rows as `{ f: [{ v }] }`, TIMESTAMP cells in the requested form. */
export function restRows(rows: Cell[][], schema: FieldSchema[], format: TimestampFormat): { f: { v: Cell }[] }[] {
  return rows.map((row) => ({ f: row.map((v, i) => ({ v: restCell(v, schema[i], format) })) }));
}
