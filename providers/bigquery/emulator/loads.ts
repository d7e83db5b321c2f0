/**
 * Load jobs from an uploaded file (the client's multipart upload): CSV and newline-delimited
 * JSON, read by DuckDB into the destination table on the job's connection, in one transaction.
 * As in BigQuery, the schema comes from the job (`schema`), from the data (`autodetect`), or
 * from the existing table; CSV columns map by position; WRITE_TRUNCATE replaces the table and
 * its schema, WRITE_APPEND (the default) appends, WRITE_EMPTY refuses a table with rows.
 */
import { statSync } from 'node:fs';
import type { DuckDBConnection } from '@duckdb/node-api';
import { atomically, columnsOf, quote, type Engine } from './engine.ts';
import { duckTypeOf, type FieldSchema } from './values.ts';

export interface LoadConfig {
  destinationTable: { projectId?: string; datasetId: string; tableId: string };
  sourceFormat?: string;
  skipLeadingRows?: number | string;
  writeDisposition?: string;
  createDisposition?: string;
  autodetect?: boolean;
  schema?: { fields?: FieldSchema[] };
  fieldDelimiter?: string;
  quote?: string;
  nullMarker?: string;
  /** Not BigQuery's: the client puts a file load's `location` here. */
  location?: string;
}

const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`;
const fail = (message: string, reason: string) => Object.assign(new Error(message), { reason });

/** DuckDB's reader for the file, typed by `columns` when known. */
function sourceOf(file: string, load: LoadConfig, columns: FieldSchema[] | undefined): string {
  const typed = columns ? `, columns = {${columns.map((f) => `${sqlString(f.name)}: ${sqlString(duckTypeOf(f))}`).join(', ')}}` : ', auto_detect = true';
  const format = (load.sourceFormat ?? 'CSV').toUpperCase();
  if (format === 'NEWLINE_DELIMITED_JSON') return `read_json(${sqlString(file)}, format = 'newline_delimited'${typed})`;
  if (format !== 'CSV') throw fail(`the emulator loads CSV and NEWLINE_DELIMITED_JSON, not ${format}`, 'invalid');
  const skip = load.skipLeadingRows === undefined ? undefined : Number(load.skipLeadingRows);
  // Without skipLeadingRows, an autodetecting load finds a header row itself.
  const header = skip === undefined ? (columns ? ', header = false' : '') : `, header = ${skip > 0}, skip = ${Math.max(0, skip - 1)}`;
  const options = [
    load.fieldDelimiter !== undefined ? `, delim = ${sqlString(load.fieldDelimiter)}` : '',
    load.quote !== undefined ? `, quote = ${sqlString(load.quote)}` : '',
    load.nullMarker !== undefined ? `, nullstr = ${sqlString(load.nullMarker)}` : '',
  ].join('');
  return `read_csv(${sqlString(file)}${header}${typed}${options})`;
}

/** Load `file` into the job's destination table; the number of rows loaded. */
export async function loadFile(engine: Engine, conn: DuckDBConnection, file: string, load: LoadConfig): Promise<number> {
  const { datasetId, tableId } = load.destinationTable;
  const name = `${quote(datasetId)}.${quote(tableId)}`;
  const existing = await engine.table(datasetId, tableId);
  const truncate = load.writeDisposition === 'WRITE_TRUNCATE';
  if (!existing && load.createDisposition === 'CREATE_NEVER') throw fail(`Not found: Table ${datasetId}.${tableId}`, 'notFound');
  if (existing && load.writeDisposition === 'WRITE_EMPTY' && existing.numRows > 0) throw fail(`Already Exists: Table ${datasetId}.${tableId} has rows (writeDisposition WRITE_EMPTY)`, 'duplicate');
  const explicit = load.schema?.fields?.length ? load.schema.fields : undefined;
  const columns = explicit ?? (load.autodetect && (truncate || !existing) ? undefined : existing?.schema);
  if (!columns && !load.autodetect) throw fail('No schema specified on job or table.', 'invalid');
  const source = sourceOf(file, load, columns);
  return atomically(conn, async () => {
    if (columns && (!existing || truncate)) await conn.run(`create or replace table ${name} (${columnsOf(columns)})`);
    if (columns) return Number((await conn.runAndReadAll(`insert into ${name} select * from ${source}`)).getRows()[0]?.[0] ?? 0);
    // Autodetected date-times are TIMESTAMPs in BigQuery: instants, read as UTC.
    const described = (await conn.runAndReadAll(`describe select * from ${source}`)).getRows();
    const naive = described.filter((r) => String(r[1]) === 'TIMESTAMP').map((r) => String(r[0]));
    const replace = naive.length ? ` replace (${naive.map((c) => `cast(${quote(c)} as timestamptz) as ${quote(c)}`).join(', ')})` : '';
    return Number((await conn.runAndReadAll(`create or replace table ${name} as select *${replace} from ${source}`)).getRows()[0]?.[0] ?? 0);
  });
}

export const fileSize = (file: string) => statSync(file).size;
