/**
 * The emulator's SQL engine: one DuckDB database (in memory, or a file under the data dir),
 * a schema per dataset. BigQuery's type names exist as DuckDB type aliases and a few of its
 * functions as macros, so most Standard SQL a DAG sends runs unchanged after `translate`.
 */
import { DuckDBInstance, type DuckDBConnection, type DuckDBResultReader } from '@duckdb/node-api';
import { classify, isDml, splitStatements, translate, type StatementType } from './sql.ts';

/** BigQuery's field in a table schema or a result schema. */
export interface FieldSchema {
  name: string;
  type: string;
  mode?: 'NULLABLE' | 'REQUIRED' | 'REPEATED';
  fields?: FieldSchema[];
  description?: string;
}

export interface StatementResult {
  statementType: StatementType;
  /** Rows as BigQuery's REST API carries them: every value a string (or null). */
  schema: FieldSchema[];
  rows: (string | null)[][];
  affectedRows?: number;
  target?: [string, string];
}

const SETUP = [
  'CREATE TYPE INT64 AS BIGINT',
  'CREATE TYPE FLOAT64 AS DOUBLE',
  'CREATE TYPE BYTES AS BLOB',
  'CREATE TYPE BIGNUMERIC AS DECIMAL(38, 9)',
  'CREATE MACRO GENERATE_UUID() AS uuid()::VARCHAR',
  'CREATE MACRO SAFE_DIVIDE(a, b) AS CASE WHEN b = 0 THEN NULL ELSE a / b END',
  'CREATE MACRO IFNULL(a, b) AS coalesce(a, b)',
  'CREATE MACRO TIMESTAMP_MILLIS(ms) AS make_timestamp(ms * 1000)',
  'CREATE MACRO UNIX_MILLIS(ts) AS epoch_ms(ts)',
];

const TYPE_MAP: [RegExp, string][] = [
  [/^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|INT64)$/, 'INTEGER'],
  [/^(FLOAT|DOUBLE|REAL|FLOAT64)$/, 'FLOAT'],
  [/^DECIMAL/, 'NUMERIC'],
  [/^BOOLEAN$/, 'BOOLEAN'],
  [/^(BLOB|BYTES)$/, 'BYTES'],
  [/^DATE$/, 'DATE'],
  [/^TIME$/, 'TIME'],
  [/^TIMESTAMP WITH TIME ZONE$/, 'TIMESTAMP'],
  [/^TIMESTAMP/, 'DATETIME'],
  [/^JSON$/, 'JSON'],
];

/** A DuckDB column type as BigQuery's field type; lists are REPEATED, structs RECORD. */
export function fieldOf(name: string, duckType: string): FieldSchema {
  if (duckType.endsWith('[]')) return { ...fieldOf(name, duckType.slice(0, -2)), mode: 'REPEATED' };
  if (duckType.startsWith('STRUCT(')) return { name, type: 'RECORD', mode: 'NULLABLE' };
  const type = TYPE_MAP.find(([re]) => re.test(duckType))?.[1] ?? 'STRING';
  return { name, type, mode: 'NULLABLE' };
}

/** A BigQuery field type as a DuckDB column type, for tables.insert. */
export function duckTypeOf(field: FieldSchema): string {
  const base = ({
    INTEGER: 'BIGINT', INT64: 'BIGINT', FLOAT: 'DOUBLE', FLOAT64: 'DOUBLE', NUMERIC: 'DECIMAL(38, 9)', BIGNUMERIC: 'DECIMAL(38, 9)',
    BOOLEAN: 'BOOLEAN', BOOL: 'BOOLEAN', STRING: 'VARCHAR', BYTES: 'BLOB', DATE: 'DATE', DATETIME: 'TIMESTAMP', TIME: 'TIME',
    TIMESTAMP: 'TIMESTAMPTZ', JSON: 'JSON', GEOGRAPHY: 'VARCHAR',
  } as Record<string, string>)[field.type.toUpperCase()];
  if (field.type.toUpperCase() === 'RECORD' || field.type.toUpperCase() === 'STRUCT') {
    const inner = (field.fields ?? []).map((f) => `${quote(f.name)} ${duckTypeOf(f)}`).join(', ');
    return field.mode === 'REPEATED' ? `STRUCT(${inner})[]` : `STRUCT(${inner})`;
  }
  if (!base) throw new Error(`field "${field.name}": type ${field.type} is not one the emulator stores`);
  return field.mode === 'REPEATED' ? `${base}[]` : base;
}

/**
 * A TIMESTAMP cell as the request asked: int64 microseconds (`formatOptions.useInt64Timestamp`,
 * what the Node client asks for) or, by default, float seconds.
 */
export function timestampCell(micros: string, int64: boolean): string {
  if (int64) return micros;
  const n = BigInt(micros);
  const sign = n < 0n ? '-' : '';
  const abs = n < 0n ? -n : n;
  return `${sign}${abs / 1_000_000n}.${String(abs % 1_000_000n).padStart(6, '0')}`;
}

export const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** A value as the REST API's row cell: strings; TIMESTAMP as epoch microseconds (see `timestampCell`). */
function cell(value: unknown, field: FieldSchema): string | null {
  if (value === null || value === undefined) return null;
  if (field.type === 'TIMESTAMP') {
    // '2026-12-04 13:28:26.144329+00' → microseconds since the epoch, exactly.
    const m = /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?([+-]\d\d(?::?\d\d)?|Z)?$/.exec(String(value));
    if (!m) return String(value);
    const zone = !m[4] || m[4] === 'Z' ? 'Z' : m[4].length === 3 ? `${m[4]}:00` : m[4];
    const seconds = BigInt(Date.parse(`${m[1]}T${m[2]}${zone}`) / 1000);
    return String(seconds * 1_000_000n + BigInt((m[3] ?? '').padEnd(6, '0')));
  }
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export class Engine {
  private constructor(private readonly instance: DuckDBInstance, private readonly admin: DuckDBConnection) {}

  static async open(path = ':memory:'): Promise<Engine> {
    const instance = await DuckDBInstance.create(path);
    const admin = await instance.connect();
    for (const s of SETUP) {
      try {
        await admin.run(s);
      } catch (err) {
        // A file database keeps the aliases and macros from its first start.
        if (!/already exists/i.test((err as Error).message)) throw err;
      }
    }
    return new Engine(instance, admin);
  }

  private readonly idle: DuckDBConnection[] = [];

  /**
   * A connection for one job's SQL, so a cancel interrupts that job only. Connections are
   * reused: opening one costs about a millisecond, more than a trivial query.
   */
  async acquire(): Promise<DuckDBConnection> {
    return this.idle.pop() ?? this.instance.connect();
  }

  release(conn: DuckDBConnection): void {
    if (this.idle.length < 64) this.idle.push(conn);
    else conn.closeSync();
  }

  /** Run a job's SQL (one statement or a script) on its connection. */
  async execute(conn: DuckDBConnection, sql: string, params?: Record<string, unknown> | unknown[]): Promise<StatementResult> {
    const statements = splitStatements(sql);
    if (!statements.length) throw new Error('the query is empty');
    let last: StatementResult | null = null;
    let affected = 0;
    for (const statement of statements) {
      const kind = classify(statement);
      const reader = await conn.runAndReadAll(translate(statement), params as never);
      last = this.resultOf(reader, kind.type, kind.target);
      affected += last.affectedRows ?? 0;
    }
    if (statements.length > 1) return { ...last!, statementType: 'SCRIPT', affectedRows: affected };
    return last!;
  }

  private resultOf(reader: DuckDBResultReader, type: StatementType, target?: [string, string]): StatementResult {
    if (isDml(type)) {
      const rows = reader.getRows();
      const n = Number(rows[0]?.[0] ?? 0);
      return { statementType: type, schema: [], rows: [], affectedRows: Number.isFinite(n) ? n : 0, target };
    }
    if (type !== 'SELECT') return { statementType: type, schema: [], rows: [], target };
    const schema = reader.columnNames().map((n, i) => fieldOf(n, reader.columnTypes()[i].toString()));
    const rows = reader.getRowsJson().map((r) => r.map((v, i) => cell(v, schema[i])));
    return { statementType: type, schema, rows };
  }

  async datasets(): Promise<string[]> {
    const r = await this.admin.runAndReadAll(`select schema_name from information_schema.schemata
      where catalog_name = current_database() and schema_name not in ('main', 'information_schema', 'pg_catalog') order by 1`);
    return r.getRows().map((row) => String(row[0]));
  }

  async createDataset(id: string): Promise<void> {
    await this.admin.run(`create schema ${quote(id)}`);
  }

  async dropDataset(id: string, contents: boolean): Promise<void> {
    await this.admin.run(`drop schema ${quote(id)}${contents ? ' cascade' : ''}`);
  }

  async tables(dataset: string): Promise<{ tableId: string; type: 'TABLE' | 'VIEW' }[]> {
    const r = await this.admin.runAndReadAll(`select table_name, table_type from information_schema.tables
      where table_catalog = current_database() and table_schema = $1 order by 1`, [dataset]);
    return r.getRows().map((row) => ({ tableId: String(row[0]), type: String(row[1]) === 'VIEW' ? 'VIEW' : 'TABLE' }));
  }

  /** A table's schema and row count, or null when it does not exist. */
  async table(dataset: string, table: string): Promise<{ type: 'TABLE' | 'VIEW'; schema: FieldSchema[]; numRows: number } | null> {
    const t = (await this.tables(dataset)).find((x) => x.tableId === table);
    if (!t) return null;
    const cols = await this.admin.runAndReadAll(`select column_name, data_type from information_schema.columns
      where table_catalog = current_database() and table_schema = $1 and table_name = $2 order by ordinal_position`, [dataset, table]);
    const schema = cols.getRows().map((row) => fieldOf(String(row[0]), String(row[1])));
    const numRows = t.type === 'TABLE' ? Number((await this.admin.runAndReadAll(`select count(*) from ${quote(dataset)}.${quote(table)}`)).getRows()[0][0]) : 0;
    return { type: t.type, schema, numRows };
  }

  async createTable(dataset: string, table: string, schema: FieldSchema[], view?: string): Promise<void> {
    if (view !== undefined) {
      await this.admin.run(`create view ${quote(dataset)}.${quote(table)} as ${translate(view)}`);
      return;
    }
    if (!schema.length) throw new Error(`table ${dataset}.${table}: a table needs a schema with at least one field`);
    await this.admin.run(`create table ${quote(dataset)}.${quote(table)} (${schema.map((f) => `${quote(f.name)} ${duckTypeOf(f)}${f.mode === 'REQUIRED' ? ' not null' : ''}`).join(', ')})`);
  }

  async dropTable(dataset: string, table: string): Promise<void> {
    const t = (await this.tables(dataset)).find((x) => x.tableId === table);
    await this.admin.run(`drop ${t?.type === 'VIEW' ? 'view' : 'table'} ${quote(dataset)}.${quote(table)}`);
  }

  /** Rows of a table, `startIndex` on, as REST cells. */
  async rows(dataset: string, table: string, startIndex: number, maxResults: number): Promise<{ schema: FieldSchema[]; rows: (string | null)[][]; total: number }> {
    const info = await this.table(dataset, table);
    if (!info) throw new Error(`Not found: Table ${dataset}.${table}`);
    const r = await this.admin.runAndReadAll(`select * from ${quote(dataset)}.${quote(table)} limit ${maxResults} offset ${startIndex}`);
    const rows = r.getRowsJson().map((row) => row.map((v, i) => cell(v, info.schema[i])));
    return { schema: info.schema, rows, total: info.numRows };
  }

  /** Append JSON rows (insertAll, NDJSON loads) by column name; unknown columns fail. */
  async insertJson(dataset: string, table: string, rows: Record<string, unknown>[]): Promise<number> {
    if (!rows.length) return 0;
    const info = await this.table(dataset, table);
    if (!info) throw new Error(`Not found: Table ${dataset}.${table}`);
    const known = new Set(info.schema.map((f) => f.name));
    for (const [i, row] of rows.entries()) {
      const unknown = Object.keys(row).filter((k) => !known.has(k));
      if (unknown.length) throw new Error(`row ${i}: no such field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} in ${dataset}.${table}`);
    }
    const cols = info.schema.map((f) => f.name);
    const appender = await this.admin.prepare(`insert into ${quote(dataset)}.${quote(table)} (${cols.map(quote).join(', ')}) values (${cols.map((_, i) => `$${i + 1}`).join(', ')})`);
    for (const row of rows) {
      appender.clearBindings();
      cols.forEach((c, i) => {
        const v = row[c];
        if (v === null || v === undefined) appender.bindNull(i + 1);
        else appender.bindVarchar(i + 1, typeof v === 'object' ? JSON.stringify(v) : String(v));
      });
      await appender.run();
    }
    return rows.length;
  }

  /** Load CSV text into a table (created from the CSV when missing, with autodetected types). */
  async loadCsv(dataset: string, table: string, csvPath: string, opts: { skipLeadingRows: number; truncate: boolean; schema?: FieldSchema[] }): Promise<number> {
    const exists = await this.table(dataset, table);
    const name = `${quote(dataset)}.${quote(table)}`;
    const source = `read_csv(${sqlString(csvPath)}, header = ${opts.skipLeadingRows > 0}, skip = ${Math.max(0, opts.skipLeadingRows - 1)}${opts.schema?.length ? `, columns = {${opts.schema.map((f) => `${sqlString(f.name)}: ${sqlString(duckTypeOf(f))}`).join(', ')}}` : ''})`;
    if (!exists) {
      await this.admin.run(`create table ${name} as select * from ${source}`);
    } else {
      if (opts.truncate) await this.admin.run(`delete from ${name}`);
      await this.admin.run(`insert into ${name} by name select * from ${source}`);
    }
    return Number((await this.admin.runAndReadAll(`select count(*) from ${source}`)).getRows()[0][0]);
  }

  async loadNdjson(dataset: string, table: string, jsonPath: string, opts: { truncate: boolean }): Promise<number> {
    const exists = await this.table(dataset, table);
    const name = `${quote(dataset)}.${quote(table)}`;
    const source = `read_json_auto(${sqlString(jsonPath)}, format = 'newline_delimited')`;
    if (!exists) await this.admin.run(`create table ${name} as select * from ${source}`);
    else {
      if (opts.truncate) await this.admin.run(`delete from ${name}`);
      await this.admin.run(`insert into ${name} by name select * from ${source}`);
    }
    return Number((await this.admin.runAndReadAll(`select count(*) from ${source}`)).getRows()[0][0]);
  }

  close(): void {
    for (const c of this.idle.splice(0)) c.closeSync();
    this.admin.closeSync();
    this.instance.closeSync();
  }
}

const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`;
