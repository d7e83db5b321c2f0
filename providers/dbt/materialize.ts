/**
 * The BigQuery SQL of each materialization, as dbt-bigquery writes it:
 * - table: `create or replace table … [partition by] [cluster by] [OPTIONS(…)] as (…)`;
 * - view: `create or replace view … [OPTIONS(…)] as …`;
 * - incremental: the table's statement on a first run or a full refresh; else `merge` on
 *   `unique_key`, an `insert` when there is none, or `insert_overwrite` (delete the partitions
 *   the new rows touch, then insert, in one transaction). Each is one script that reads the
 *   model's SQL directly, never a temporary table that dies with a session;
 * - pre- and post-hooks run in the same script, before and after the statement.
 */
import type { PartitionBy } from './config.ts';
import type { Relation } from './context.ts';
import { DbtCompilerError } from './errors.ts';
import type { DbtNode } from './project.ts';

export const MATERIALIZATIONS = ['table', 'view', 'incremental', 'ephemeral'] as const;

export interface MaterializeInput {
  node: DbtNode;
  relation: Relation;
  /** The model's compiled SELECT, ephemeral models inlined. */
  sql: string;
  /** For incremental models: the target's columns when it exists (and this is no full refresh). */
  existingColumns: string[] | null;
  preHooks: string[];
  postHooks: string[];
}

export interface Materialized {
  /** What the script does: table, view, merge, append, insert_overwrite. */
  strategy: string;
  script: string;
}

const q = (ident: string) => `\`${ident.replace(/`/g, '')}\``;
const tripleQuoted = (text: string) => `"""${text.replace(/\\/g, '\\\\').replace(/"""/g, '\\"\\"\\"')}"""`;

export function partitionExpression(p: PartitionBy): string {
  const type = (p.data_type ?? 'date').toLowerCase();
  const gran = (p.granularity ?? 'day').toLowerCase();
  if (type === 'int64') {
    if (!p.range) throw new DbtCompilerError(`partition_by on "${p.field}" (int64) needs range: {start, end, interval}`);
    return `range_bucket(${p.field}, generate_array(${p.range.start}, ${p.range.end}, ${p.range.interval}))`;
  }
  if (type === 'date') return gran === 'day' ? p.field : `date_trunc(${p.field}, ${gran})`;
  if (type === 'timestamp') return `timestamp_trunc(${p.field}, ${gran})`;
  if (type === 'datetime') return `datetime_trunc(${p.field}, ${gran})`;
  throw new DbtCompilerError(`partition_by data_type "${p.data_type}" is not one of date, timestamp, datetime, int64`);
}

function options(node: DbtNode): string {
  const opts: string[] = [];
  const c = node.config;
  if (c.persist_docs?.relation && node.description) opts.push(`description=${tripleQuoted(node.description)}`);
  const labels = Object.entries(c.labels ?? {});
  if (labels.length) opts.push(`labels=[${labels.map(([k, v]) => `('${k}', '${String(v)}')`).join(', ')}]`);
  return opts.length ? `\nOPTIONS(${opts.join(', ')})` : '';
}

function createTable(input: MaterializeInput): string {
  const c = input.node.config;
  const cluster = c.cluster_by ? (Array.isArray(c.cluster_by) ? c.cluster_by : [c.cluster_by]) : [];
  return `create or replace table ${input.relation}`
    + (c.partition_by ? `\npartition by ${partitionExpression(c.partition_by)}` : '')
    + (cluster.length ? `\ncluster by ${cluster.join(', ')}` : '')
    + options(input.node)
    + `\nas (\n${input.sql.trim()}\n)`;
}

function merge(input: MaterializeInput, keys: string[], columns: string[]): string {
  const on = keys.map((k) => `(DBT_INTERNAL_SOURCE.${k} = DBT_INTERNAL_DEST.${k})`).join(' and ');
  const list = columns.map(q).join(', ');
  const set = columns.filter((col) => !keys.includes(col)).map((col) => `${q(col)} = DBT_INTERNAL_SOURCE.${q(col)}`);
  return `merge into ${input.relation} as DBT_INTERNAL_DEST\nusing (\n${input.sql.trim()}\n) as DBT_INTERNAL_SOURCE\non (${on})`
    + (set.length ? `\nwhen matched then update set\n  ${set.join(',\n  ')}` : '')
    + `\nwhen not matched then insert\n  (${list})\nvalues\n  (${list})`;
}

function insertOverwrite(input: MaterializeInput, columns: string[]): string {
  const p = input.node.config.partition_by;
  if (!p) throw new DbtCompilerError(`${input.node.path}: incremental_strategy insert_overwrite needs partition_by`);
  const expr = partitionExpression(p);
  const list = columns.map(q).join(', ');
  return [
    'begin transaction',
    `delete from ${input.relation} where ${expr} in (\n  select distinct ${expr} from (\n${input.sql.trim()}\n  )\n)`,
    `insert into ${input.relation} (${list})\nselect ${list} from (\n${input.sql.trim()}\n)`,
    'commit transaction',
  ].join(';\n');
}

export function materialize(input: MaterializeInput): Materialized {
  const { node } = input;
  const kind = node.config.materialized;
  let strategy: string;
  let body: string;
  if (kind === 'view') {
    strategy = 'view';
    body = `create or replace view ${input.relation}${options(node)}\nas ${input.sql.trim()}`;
  } else if (kind === 'table' || (kind === 'incremental' && input.existingColumns === null)) {
    strategy = 'table';
    body = createTable(input);
  } else if (kind === 'incremental') {
    const columns = input.existingColumns!;
    const wanted = String(node.config.incremental_strategy ?? 'merge');
    const keys = node.config.unique_key === undefined ? [] : Array.isArray(node.config.unique_key) ? node.config.unique_key.map(String) : [String(node.config.unique_key)];
    if (wanted === 'insert_overwrite') {
      strategy = 'insert_overwrite';
      body = insertOverwrite(input, columns);
    } else if (wanted === 'merge' || wanted === 'append') {
      strategy = keys.length && wanted === 'merge' ? 'merge' : 'append';
      body = strategy === 'merge' ? merge(input, keys, columns) : `insert into ${input.relation} (${columns.map(q).join(', ')})\nselect ${columns.map(q).join(', ')} from (\n${input.sql.trim()}\n)`;
    } else {
      throw new DbtCompilerError(`${node.path}: incremental_strategy "${wanted}" is not one of merge, append, insert_overwrite`);
    }
  } else {
    throw new DbtCompilerError(`${node.path}: unknown materialization "${kind}"; Updraft runs ${MATERIALIZATIONS.join(', ')}`);
  }
  const statements = [...input.preHooks, body, ...input.postHooks].map((s) => s.trim().replace(/;+$/, '')).filter(Boolean);
  return { strategy, script: `${statements.join(';\n')};` };
}

/** Inline ephemeral models as CTEs `__dbt__cte__<name>`, in dependency order, at the top of `sql`. */
export function injectCtes(sql: string, ctes: { name: string; sql: string }[]): string {
  if (!ctes.length) return sql;
  const defs = ctes.map((c) => `__dbt__cte__${c.name} as (\n${c.sql.trim()}\n)`).join(',\n');
  const lead = /^(\s*(?:--[^\n]*\n|\/\*[\s\S]*?\*\/|\s)*)with\s/i.exec(sql);
  if (lead) return `${lead[1]}with ${defs},\n${sql.slice(lead[0].length)}`;
  return `with ${defs}\n${sql.trimStart()}`;
}
