/**
 * `on_schema_change` for incremental models, checked by the model's task just before it
 * submits (its upstream tables are built by then): a dry run gives the new SELECT's columns,
 * the compile gave the table's. `ignore` does nothing; `fail` fails the task naming the new
 * columns; `append_new_columns` adds them (`alter table … add column`) in the same script and
 * writes them too.
 */
import type { Context } from 'updraft';
import { BigQueryHook } from 'updraft/providers/bigquery';
import type { CompiledMeta } from './compile.ts';
import { Relation } from './context.ts';
import { DbtCompilerError } from './errors.ts';
import { materialize } from './materialize.ts';
import type { DbtNode } from './project.ts';

const INCREMENTAL_RUNS = new Set(['merge', 'append', 'insert_overwrite']);

interface Field { name: string; type: string; mode?: string; fields?: Field[] }

const SQL_TYPES: Record<string, string> = { INTEGER: 'INT64', FLOAT: 'FLOAT64', BOOLEAN: 'BOOL' };

/** A REST schema field's type as SQL DDL writes it (INTEGER → INT64, RECORD → STRUCT<…>, REPEATED → ARRAY<…>). */
export function sqlType(f: Field): string {
  const base = f.type === 'RECORD' || f.type === 'STRUCT'
    ? `STRUCT<${(f.fields ?? []).map((c) => `\`${c.name}\` ${sqlType(c)}`).join(', ')}>`
    : SQL_TYPES[f.type] ?? f.type;
  return f.mode === 'REPEATED' ? `ARRAY<${base}>` : base;
}

/** The script to submit instead of the compiled one, or null to keep it. */
export async function checkSchemaChange(ctx: Context, connId: string, node: DbtNode, meta: CompiledMeta): Promise<string | null> {
  const mode = meta.onSchemaChange ?? 'ignore';
  if (!INCREMENTAL_RUNS.has(meta.strategy) || mode === 'ignore' || !meta.select || !meta.existingColumns) return null;
  if (mode !== 'fail' && mode !== 'append_new_columns') {
    throw new DbtCompilerError(`${node.path}: on_schema_change "${mode}" is not supported; use ignore, append_new_columns or fail`);
  }
  const hook = await BigQueryHook.create(ctx, connId);
  const [job] = await hook.client.createQueryJob({ query: meta.select, dryRun: true, useLegacySql: false, location: hook.location });
  const fields = ((job.metadata as { statistics?: { query?: { schema?: { fields?: Field[] } } } }).statistics?.query?.schema?.fields ?? []);
  const have = new Set(meta.existingColumns.map((c) => c.toLowerCase()));
  const added = fields.filter((f) => !have.has(f.name.toLowerCase()));
  if (!added.length) return null;
  const names = added.map((f) => `${f.name} ${sqlType(f)}`).join(', ');
  if (mode === 'fail') {
    throw new DbtCompilerError(`${node.path}: the model's columns changed (new: ${names}) and on_schema_change is "fail"; run a full refresh, or set on_schema_change to append_new_columns`);
  }
  const relation = new Relation(meta.relation.project, meta.relation.dataset, meta.relation.table);
  ctx.log.info('dbt: %s gains column(s) %s (on_schema_change: append_new_columns)', node.name, names);
  const alter = `alter table ${relation} ${added.map((f) => `add column if not exists \`${f.name}\` ${sqlType(f)}`).join(', ')}`;
  const m = materialize({
    node, relation, sql: meta.select, existingColumns: [...meta.existingColumns, ...added.map((f) => f.name)],
    preHooks: [alter, ...(meta.preHooks ?? [])], postHooks: meta.postHooks ?? [],
  });
  ctx.log.info('dbt: submitting instead:\n%s', m.script);
  return m.script;
}
