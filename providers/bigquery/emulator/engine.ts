/**
 * The emulator's SQL engine: one DuckDB database (in memory, or a file under the data dir),
 * a schema per dataset. Statements are translated one by one (sql.ts) and run on the job's
 * connection; a script's `BEGIN TRANSACTION … COMMIT TRANSACTION` is a DuckDB transaction, rolled
 * back when a statement fails or the script ends inside it, as BigQuery does.
 */
import { DuckDBInstance, type DuckDBConnection, type DuckDBResultReader } from '@duckdb/node-api';
import { classify, isDml, optionsOf, statementsOf, translateStatement, UnsupportedSqlError, type Classified, type StatementType, type Translated } from './sql.ts';
import { cellOf, duckTypeOf, fieldOf, type Cell, type FieldSchema } from './values.ts';

export type { FieldSchema } from './values.ts';

export interface DmlStats {
  inserted: number;
  deleted: number;
  updated: number;
}

export interface StatementResult {
  statementType: StatementType;
  /** The result of the last statement when it was a query: its schema and REST cells. */
  schema: FieldSchema[];
  rows: Cell[][];
  query: boolean;
  affectedRows?: number;
  dml?: DmlStats;
  target?: [string, string];
  dataset?: string;
}

export interface DatasetMeta {
  location?: string;
  labels: Record<string, string>;
  creationTime: number;
}

/** Query parameters as DuckDB binds them (by name, or in order), with their DuckDB types. */
export interface Bindings {
  values?: Record<string, unknown> | unknown[];
  types?: Record<string, string> | string[];
}

const SETUP = [
  "SET GLOBAL TimeZone = 'UTC'",
  // BigQuery sorts NULLs first ascending and last descending.
  "SET GLOBAL default_null_order = 'nulls_first_on_asc_last_on_desc'",
  'CREATE TYPE INT64 AS BIGINT',
  'CREATE TYPE FLOAT64 AS DOUBLE',
  'CREATE TYPE BYTES AS BLOB',
  'CREATE TYPE BIGNUMERIC AS DECIMAL(38, 9)',
];

export const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** Each parameter the statement uses must come with the request, as BigQuery requires. */
function checkParams(t: Translated, types: Bindings['types'], before: number): void {
  const named = types && !Array.isArray(types) ? types : {};
  const missing = t.params.find((p) => !(p in named));
  if (missing) throw Object.assign(new Error(`Query parameter '${missing}' not found`), { reason: 'invalidQuery' });
  const given = Array.isArray(types) ? types.length : 0;
  if (t.positional && before + t.positional > given) throw Object.assign(new Error(`Query parameter number ${given + 1} not found`), { reason: 'invalidQuery' });
}

/** A statement's failure, placed in its script as BigQuery places it: `at [line:column]`. */
function positioned(err: unknown, line: number, column: number): Error {
  const e = err as { message?: string; reason?: string };
  const message = `${String(e?.message ?? err).split('\n')[0]} at [${line}:${column}]`;
  return err instanceof UnsupportedSqlError ? new UnsupportedSqlError(message) : Object.assign(new Error(message), e?.reason ? { reason: e.reason } : {});
}

/** Run `work` in a transaction of its own on `conn`. */
export async function atomically<T>(conn: DuckDBConnection, work: () => Promise<T>): Promise<T> {
  await conn.run('BEGIN TRANSACTION');
  try {
    const result = await work();
    await conn.run('COMMIT');
    return result;
  } catch (err) {
    await conn.run('ROLLBACK').catch(() => {});
    throw err;
  }
}

export class Engine {
  /** Datasets' location and labels, which DuckDB schemas do not carry. */
  readonly datasetMeta = new Map<string, DatasetMeta>();
  private readonly idle: DuckDBConnection[] = [];

  private constructor(private readonly instance: DuckDBInstance, readonly admin: DuckDBConnection) {}

  static async open(path = ':memory:'): Promise<Engine> {
    const instance = await DuckDBInstance.create(path);
    const admin = await instance.connect();
    for (const s of SETUP) {
      try {
        await admin.run(s);
      } catch (err) {
        // A file database keeps the aliases from its first start; DuckDB may know some already.
        if (!/already exists/i.test((err as Error).message)) throw err;
      }
    }
    return new Engine(instance, admin);
  }

  /**
   * A connection for one job's SQL, so a cancel interrupts that job only. Connections are
   * reused: opening one costs about a millisecond, more than a trivial query.
   */
  async acquire(): Promise<DuckDBConnection> {
    return this.idle.pop() ?? this.instance.connect();
  }

  /** Connections that hold a script's temporary tables, closed rather than reused. */
  private readonly scratched = new WeakSet<DuckDBConnection>();

  release(conn: DuckDBConnection): void {
    if (this.idle.length < 64 && !this.scratched.has(conn)) this.idle.push(conn);
    else conn.closeSync();
  }

  /** Run a job's SQL (one statement or a script) on its connection. */
  async execute(conn: DuckDBConnection, sql: string, bindings: Bindings = {}): Promise<StatementResult> {
    const statements = statementsOf(sql);
    if (!statements.length) throw new Error('the query is empty');
    const script = statements.length > 1;
    const dml: DmlStats = { inserted: 0, deleted: 0, updated: 0 };
    let last: StatementResult | null = null;
    let counted = false;
    let inTransaction = false;
    let positional = 0;
    try {
      for (const s of statements) {
        const kind = classify(s.text);
        try {
          const t = translateStatement(s.text, bindings.types);
          checkParams(t, bindings.types, positional);
          const values = Array.isArray(bindings.values) ? bindings.values.slice(positional, positional + t.positional)
            : bindings.values && t.params.length ? Object.fromEntries(t.params.map((p) => [p, (bindings.values as Record<string, unknown>)[p]])) : undefined;
          positional += t.positional;
          // A MERGE's actions tell inserted, updated and deleted rows apart.
          const text = kind.type === 'MERGE' ? `${t.sql}\nRETURNING merge_action` : t.sql;
          const run = () => conn.runAndReadAll(text, (Array.isArray(values) && !values.length ? undefined : values) as never);
          // A statement DuckDB runs in parts is atomic, as BigQuery's one statement is.
          last = this.resultOf(t.parts.length > 1 && !inTransaction ? await atomically(conn, run) : await run(), kind);
        } catch (err) {
          throw script ? positioned(err, s.line, s.column) : err;
        }
        if (kind.temporary) this.scratched.add(conn);
        if (kind.type === 'BEGIN_TRANSACTION') inTransaction = true;
        if (kind.type === 'COMMIT_TRANSACTION' || kind.type === 'ROLLBACK_TRANSACTION') inTransaction = false;
        this.noteSchema(kind, s.text);
        if (last.dml) {
          counted = true;
          dml.inserted += last.dml.inserted;
          dml.deleted += last.dml.deleted;
          dml.updated += last.dml.updated;
        }
      }
      // A script that ends inside a transaction has it rolled back.
      if (inTransaction) await conn.run('ROLLBACK');
    } catch (err) {
      if (inTransaction) await conn.run('ROLLBACK').catch(() => {});
      throw err;
    }
    if (!script) return last!;
    const affectedRows = counted ? dml.inserted + dml.deleted + dml.updated : undefined;
    return { ...last!, statementType: 'SCRIPT', target: undefined, dataset: undefined, ...(counted ? { dml, affectedRows } : { dml: undefined, affectedRows: undefined }) };
  }

  /** A dataset made or dropped by SQL is known to the REST API too. */
  private noteSchema(kind: Classified, statement: string): void {
    if (!kind.dataset) return;
    if (kind.type === 'DROP_SCHEMA') this.datasetMeta.delete(kind.dataset);
    if (kind.type !== 'CREATE_SCHEMA' || this.datasetMeta.has(kind.dataset)) return;
    const options = optionsOf(statement);
    const labels = Array.isArray(options.labels) ? Object.fromEntries(options.labels as [string, string][]) : {};
    this.datasetMeta.set(kind.dataset, { location: typeof options.location === 'string' ? options.location : undefined, labels, creationTime: Date.now() });
  }

  private resultOf(reader: DuckDBResultReader, kind: Classified): StatementResult {
    const base = { statementType: kind.type, schema: [], rows: [], query: false, target: kind.target, dataset: kind.dataset };
    if (isDml(kind.type) || kind.type === 'TRUNCATE_TABLE') {
      const rows = reader.getRows();
      let dml: DmlStats;
      if (kind.type === 'MERGE') {
        const count = (action: string) => rows.filter((r) => r[0] === action).length;
        dml = { inserted: count('INSERT'), deleted: count('DELETE'), updated: count('UPDATE') };
      } else {
        const n = Number(rows[0]?.[0] ?? 0);
        dml = { inserted: 0, deleted: 0, updated: 0, [kind.type === 'INSERT' ? 'inserted' : kind.type === 'UPDATE' ? 'updated' : 'deleted']: n };
      }
      const affected = kind.type === 'TRUNCATE_TABLE' ? undefined : dml.inserted + dml.deleted + dml.updated;
      return { ...base, dml, affectedRows: affected };
    }
    if (kind.type !== 'SELECT') return base;
    const types = reader.columnTypes();
    const schema = reader.columnNames().map((n, i) => fieldOf(n, types[i]));
    const rows = reader.getRows().map((r) => r.map((v, i) => cellOf(v, schema[i])));
    return { ...base, schema, rows, query: true };
  }

  /**
   * A dry run: the result schema of a single query, found by preparing it (nothing runs), or
   * for other statements and scripts, a check that each one translates and prepares.
   */
  async describe(conn: DuckDBConnection, sql: string, types?: Bindings['types']): Promise<StatementResult> {
    const statements = statementsOf(sql);
    if (!statements.length) throw new Error('the query is empty');
    const script = statements.length > 1;
    let result: StatementResult | null = null;
    let positional = 0;
    for (const s of statements) {
      const kind = classify(s.text);
      const t = translateStatement(s.text, types);
      checkParams(t, types, positional);
      positional += t.positional;
      const extracted = await conn.extractStatements(t.sql);
      for (let i = 0; i < extracted.count; i++) {
        try {
          const prepared = await extracted.prepare(i);
          const schema = kind.type === 'SELECT' && !script
            ? Array.from({ length: prepared.columnCount }, (_, c) => fieldOf(prepared.columnName(c), prepared.columnType(c))) : [];
          result = { statementType: kind.type, schema, rows: [], query: kind.type === 'SELECT', target: kind.target, dataset: kind.dataset };
        } catch (err) {
          // In a script, a statement may use what an earlier one creates.
          if (!script || !/Catalog Error/.test((err as Error).message)) throw script ? positioned(err, s.line, s.column) : err;
        }
      }
    }
    return script ? { statementType: 'SCRIPT', schema: [], rows: [], query: false } : result!;
  }

  async datasets(): Promise<string[]> {
    const r = await this.admin.runAndReadAll(`select schema_name from information_schema.schemata
      where catalog_name = current_database() and schema_name not in ('main', 'information_schema', 'pg_catalog') order by 1`);
    return r.getRows().map((row) => String(row[0]));
  }

  async createDataset(id: string, meta: Omit<DatasetMeta, 'creationTime'>): Promise<void> {
    await this.admin.run(`create schema ${quote(id)}`);
    this.datasetMeta.set(id, { ...meta, creationTime: Date.now() });
  }

  async dropDataset(id: string, contents: boolean): Promise<void> {
    await this.admin.run(`drop schema ${quote(id)}${contents ? ' cascade' : ''}`);
    this.datasetMeta.delete(id);
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
    const name = `${quote(dataset)}.${quote(table)}`;
    const prepared = await this.admin.prepare(`select * from ${name}`);
    const required = new Set((await this.admin.runAndReadAll(`select column_name from information_schema.columns
      where table_catalog = current_database() and table_schema = $1 and table_name = $2 and is_nullable = 'NO'`, [dataset, table])).getRows().map((r) => String(r[0])));
    const schema = Array.from({ length: prepared.columnCount }, (_, c) => {
      const field = fieldOf(prepared.columnName(c), prepared.columnType(c));
      return required.has(field.name) && field.mode === 'NULLABLE' ? { ...field, mode: 'REQUIRED' as const } : field;
    });
    const numRows = t.type === 'TABLE' ? Number((await this.admin.runAndReadAll(`select count(*) from ${name}`)).getRows()[0][0]) : 0;
    return { type: t.type, schema, numRows };
  }

  async createTable(dataset: string, table: string, schema: FieldSchema[], view?: string): Promise<void> {
    if (view !== undefined) {
      await this.admin.run(`create view ${quote(dataset)}.${quote(table)} as ${translateStatement(view).sql}`);
      return;
    }
    if (!schema.length) throw new Error(`table ${dataset}.${table}: a table needs a schema with at least one field`);
    await this.admin.run(`create table ${quote(dataset)}.${quote(table)} (${columnsOf(schema)})`);
  }

  async dropTable(dataset: string, table: string): Promise<void> {
    const t = (await this.tables(dataset)).find((x) => x.tableId === table);
    await this.admin.run(`drop ${t?.type === 'VIEW' ? 'view' : 'table'} ${quote(dataset)}.${quote(table)}`);
  }

  /** Rows of a table, `startIndex` on, as REST cells. */
  async rows(dataset: string, table: string, startIndex: number, maxResults: number): Promise<{ schema: FieldSchema[]; rows: Cell[][]; total: number }> {
    const info = await this.table(dataset, table);
    if (!info) throw new Error(`Not found: Table ${dataset}.${table}`);
    const r = await this.admin.runAndReadAll(`select * from ${quote(dataset)}.${quote(table)} limit ${maxResults} offset ${startIndex}`);
    const rows = r.getRows().map((row) => row.map((v, i) => cellOf(v, info.schema[i])));
    return { schema: info.schema, rows, total: info.numRows };
  }

  /** Append JSON rows (insertAll) by column name; unknown columns fail. */
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

  close(): void {
    for (const c of this.idle.splice(0)) c.closeSync();
    this.admin.closeSync();
    this.instance.closeSync();
  }
}

/** A BigQuery schema as DuckDB column definitions. */
export const columnsOf = (schema: FieldSchema[]) => schema.map((f) => `${quote(f.name)} ${duckTypeOf(f)}${f.mode === 'REQUIRED' ? ' not null' : ''}`).join(', ');
