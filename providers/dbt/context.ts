/**
 * The names a dbt template sees: `ref`, `source`, `config`, `var`, `env_var`, `this`, `target`,
 * `is_incremental()`, `run_started_at`, `invocation_id`, `adapter.quote`, `log`, `exceptions`,
 * `modules.datetime`, `run_query` and `{% call statement() %}`, `execute`, `model`. Relations
 * are named with the project's `generate_schema_name` / `generate_alias_name` when it defines
 * them, else dbt's defaults.
 */
import { DbtCompilerError, DbtProjectError } from './errors.ts';
import { splitArgs, type DbtJinja } from './jinja.ts';
import type { DbtTarget } from './project-files.ts';
import type { DbtNode, LoadedProject } from './project.ts';
import { datetimeModule } from './datetime.ts';

/** A BigQuery relation; prints as `` `project`.`dataset`.`table` ``. */
export class Relation {
  constructor(readonly database: string, readonly schema: string, readonly identifier: string) {}
  get project(): string { return this.database; }
  get dataset(): string { return this.schema; }
  get name(): string { return this.identifier; }
  get table(): string { return this.identifier; }
  render(): string { return this.toString(); }
  toString(): string { return [this.database, this.schema, this.identifier].filter(Boolean).map((p) => `\`${p}\``).join('.'); }
}

/** The query results `run_query` gives a template (agate's shape, as far as templates use it). */
export interface QueryTable {
  columns: { name: string; values(): unknown[] }[];
  rows: unknown[][];
  column_names: string[];
  length: number;
}

export interface RenderEnv {
  project: LoadedProject;
  jinja: DbtJinja;
  target: DbtTarget;
  vars: Record<string, unknown>;
  /** True in the setup task (dbt's `execute`); false while reading the project. */
  execute: boolean;
  fullRefresh: boolean;
  runStartedAt: Date;
  invocationId: string;
  /** Relations that exist in BigQuery now, by unique id (for `is_incremental()`). */
  existing?: ReadonlySet<string>;
  /** Queries `run_query`/`statement` asked for; a pass that adds one renders again once it ran. */
  queries?: Map<string, QueryTable | null>;
  log?: (message: string) => void;
}

/** What one render learned about its node. */
export interface RenderCapture {
  refs: { name: string; line: number }[];
  sources: { source: string; table: string; line: number }[];
  config: Record<string, unknown>[];
  /** Ephemeral models used, to inline as CTEs. */
  ephemerals: Set<string>;
}

const str = (v: unknown) => (v === undefined || v === null ? '' : String(v).trim());

export function relationOf(env: RenderEnv, node: DbtNode): Relation {
  const c = node.config;
  const names = baseNames(env, node);
  const schema = env.jinja.macros.generate_schema_name
    ? str(withNames(env, names, () => env.jinja.macros.generate_schema_name(c.schema ?? null, nodeView(node))))
    : c.schema ? `${env.target.schema}_${String(c.schema).trim()}` : env.target.schema;
  const alias = env.jinja.macros.generate_alias_name
    ? str(withNames(env, names, () => env.jinja.macros.generate_alias_name(c.alias ?? null, nodeView(node))))
    : c.alias ? String(c.alias).trim() : node.name;
  return new Relation(String(c.database ?? c.project ?? env.target.project), schema, alias);
}

function withNames<T>(env: RenderEnv, names: Record<string, unknown>, run: () => T): T {
  return env.jinja.withNames(names, run);
}

function nodeView(node: DbtNode): Record<string, unknown> {
  return { name: node.name, unique_id: node.uniqueId, resource_type: node.kind, path: node.path, original_file_path: node.path, fqn: [...node.folders, node.name], config: node.config, tags: node.config.tags, description: node.description ?? '' };
}

function targetView(t: DbtTarget): Record<string, unknown> {
  return { name: t.name, type: t.type, project: t.project, database: t.project, dataset: t.schema, schema: t.schema, location: t.location ?? null, threads: t.threads, profile_name: t.name };
}

function baseNames(env: RenderEnv, node: DbtNode): Record<string, unknown> {
  return {
    target: targetView(env.target),
    execute: env.execute,
    flags: { FULL_REFRESH: env.fullRefresh, WHICH: 'run' },
    run_started_at: datetimeModule.fromDate(env.runStartedAt),
    invocation_id: env.invocationId,
    project_name: env.project.name,
    model: nodeView(node),
    var: (name: string, fallback?: unknown) => {
      if (Object.hasOwn(env.vars, name)) return env.vars[name];
      if (fallback !== undefined) return fallback;
      throw new DbtCompilerError(`required var '${name}' not found; set it in dbt_project.yml vars: or pass vars to dbtTaskGroup`);
    },
    env_var: (name: string, fallback?: unknown) => {
      const v = process.env[name];
      if (v !== undefined) return v;
      if (fallback !== undefined) return fallback;
      throw new DbtCompilerError(`env var required but not provided: '${name}'`);
    },
    log: (msg: unknown) => { env.log?.(String(msg)); return ''; },
    print: (msg: unknown) => { env.log?.(String(msg)); return ''; },
    exceptions: {
      raise_compiler_error: (msg: unknown) => { throw new DbtCompilerError(String(msg)); },
      warn: (msg: unknown) => { env.log?.(`warning: ${String(msg)}`); return ''; },
    },
    modules: { datetime: datetimeModule },
    tojson: (v: unknown) => JSON.stringify(v),
    fromjson: (s: string) => JSON.parse(s),
    adapter: {
      quote: (s: unknown) => `\`${String(s)}\``,
      dispatch: (name: string) => env.jinja.macros[`bigquery__${name}`] ?? env.jinja.macros[`default__${name}`]
        ?? (() => { throw new DbtCompilerError(`adapter.dispatch('${name}') found neither bigquery__${name} nor default__${name}`); })(),
    },
  };
}

/** Names for rendering `node`; `capture` collects what it calls. */
export function renderNames(env: RenderEnv, node: DbtNode, capture: RenderCapture, relations: (n: DbtNode) => Relation): Record<string, unknown> {
  const { project } = env;
  const byName = (name: string) => [...project.nodes.values()].find((n) => n.kind !== 'test' && n.name === name);
  const names = baseNames(env, node);
  const lineHint = (needle: string) => { const at = node.raw.indexOf(needle); return at < 0 ? 0 : node.raw.slice(0, at).split('\n').length; };
  const statements = new Map<string, unknown>();
  const runQuery = (sql: string): QueryTable | null => {
    if (!env.execute) return null;
    if (!env.queries) throw new DbtCompilerError(`run_query and statement need a BigQuery connection, which this render has none of`);
    if (!env.queries.has(sql)) env.queries.set(sql, null);
    return env.queries.get(sql) ?? emptyTable();
  };
  return {
    ...names,
    this: relations(node),
    ref: (...raw: unknown[]) => {
      const { positional } = splitArgs(raw);
      const name = String(positional.at(-1));
      capture.refs.push({ name, line: lineHint(name) });
      const target = byName(name);
      if (!target) {
        if (!env.execute) return new Relation('', '', name);
        throw new DbtProjectError(node.path, lineHint(name) || null, `ref('${name}') names no model or seed`);
      }
      if (target.config.materialized === 'ephemeral') {
        capture.ephemerals.add(target.uniqueId);
        return `__dbt__cte__${target.name}`;
      }
      return relations(target);
    },
    source: (sourceName: string, table: string) => {
      capture.sources.push({ source: sourceName, table, line: lineHint(table) });
      const src = project.sources.get(`${sourceName}.${table}`);
      if (!src) {
        if (!env.execute) return new Relation('', sourceName, table);
        throw new DbtProjectError(node.path, lineHint(table) || null, `source('${sourceName}', '${table}') is not declared in a schema.yml`);
      }
      return new Relation(src.project ?? env.target.project, src.schema, src.identifier);
    },
    config: Object.assign((...raw: unknown[]) => { capture.config.push(splitArgs(raw).kwargs); return ''; }, {
      get: (key: string, fallback?: unknown) => node.config[key] ?? fallback ?? null,
      require: (key: string) => {
        if (node.config[key] === undefined) throw new DbtCompilerError(`config "${key}" is required`);
        return node.config[key];
      },
    }),
    is_incremental: () => env.execute && node.config.materialized === 'incremental' && !env.fullRefresh && !!env.existing?.has(node.uniqueId),
    should_full_refresh: () => env.fullRefresh,
    run_query: runQuery,
    statement: (...raw: unknown[]) => {
      const { positional, kwargs } = splitArgs(raw);
      const name = String(positional[0] ?? kwargs.name ?? 'statement');
      const sql = String((kwargs.caller as () => unknown)?.() ?? '');
      statements.set(name, env.execute && (positional[1] ?? kwargs.fetch_result) ? runQuery(sql) : null);
      return '';
    },
    load_result: (name: string) => {
      const table = statements.get(name) as QueryTable | null | undefined;
      return table ? { table, data: table.rows, response: { rows_affected: table.length } } : null;
    },
  };
}

function emptyTable(): QueryTable {
  return { columns: [], rows: [], column_names: [], length: 0 };
}

/** rows → agate-like table. */
export function toTable(rows: Record<string, unknown>[]): QueryTable {
  const names = rows.length ? Object.keys(rows[0]) : [];
  return {
    columns: names.map((name) => ({ name, values: () => rows.map((r) => r[name]) })),
    rows: rows.map((r) => names.map((n) => r[n])),
    column_names: names,
    length: rows.length,
  };
}
