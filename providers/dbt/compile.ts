/**
 * The setup task: render every selected node once per run and keep the final SQL as XCom, one
 * key per node (gzipped by the XCom backend when large), for as long as the run exists. It
 * reads BigQuery (which incremental targets exist and their columns; `run_query`) and creates
 * missing datasets; it never runs a model. A node that fails to render fails its own task,
 * not this one.
 */
import type { Context } from 'updraft';
import { BigQueryHook } from 'updraft/providers/bigquery';
import { relationOf, renderNames, toTable, type QueryTable, type Relation, type RenderCapture, type RenderEnv } from './context.ts';
import { taskUpstreams, topoOrder } from './graph.ts';
import type { DbtGraph } from './load.ts';
import { injectCtes, materialize } from './materialize.ts';
import type { DbtNode } from './project.ts';
import { builtinTestSql } from './test-sql.ts';
import { DbtCompilerError } from './errors.ts';

/** What a node's task reads beside its SQL (XCom key `<unique id>.meta`). */
export interface CompiledMeta {
  relation: { project: string; dataset: string; table: string };
  materialized: string;
  strategy: string;
  /** The model's SELECT, for on_schema_change checks before submitting. */
  select?: string;
  existingColumns?: string[] | null;
  onSchemaChange?: string;
  preHooks?: string[];
  postHooks?: string[];
  error?: string;
}

export interface CompileSummary {
  compiled: number;
  failed: string[];
  ms: number;
}

const MAX_QUERY_PASSES = 5;

export interface CompileOptions {
  connId: string;
  fullRefresh: boolean;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) { const i = next++; out[i] = await fn(items[i]); }
  }));
  return out;
}

export async function compileRun(ctx: Context, graph: DbtGraph, options: CompileOptions): Promise<CompileSummary> {
  const started = performance.now();
  const hook = await BigQueryHook.create(ctx, options.connId);
  const { project } = graph;
  const target = { ...graph.target, project: hook.projectId || graph.target.project, location: hook.location ?? graph.target.location };
  const conf = ctx.conf as { dbt_vars?: Record<string, unknown>; full_refresh?: boolean };
  const fullRefresh = options.fullRefresh || conf.full_refresh === true;
  const env: RenderEnv = {
    project, jinja: graph.jinja(), target, vars: { ...graph.vars, ...conf.dbt_vars }, execute: true, fullRefresh,
    runStartedAt: new Date(), invocationId: `${ctx.dagId}__${ctx.runId}`, existing: new Set(), queries: new Map(),
    log: (m) => ctx.log.info('dbt: %s', m),
  };
  const relations = new Map<string, Relation>();
  const relation = (n: DbtNode) => { let r = relations.get(n.uniqueId); if (!r) relations.set(n.uniqueId, (r = relationOf(env, n))); return r; };

  const built = graph.selected.filter((n) => n.kind !== 'test' && n.config.materialized !== 'ephemeral');
  const datasets = new Map<string, string>();
  for (const n of built) { const r = relation(n); if (r.database === target.project) datasets.set(r.schema, r.schema); }
  await mapLimit([...datasets.keys()], 8, (d) => hook.ensureDataset(d, target.location));

  const columns = new Map<string, string[]>();
  const incremental = built.filter((n) => n.config.materialized === 'incremental' && !fullRefresh);
  await mapLimit(incremental, 16, async (n) => {
    const r = relation(n);
    if (!(await hook.tableExists(r.schema, r.identifier))) return;
    const meta = await hook.getTable(r.schema, r.identifier) as { schema?: { fields?: { name: string }[] } };
    columns.set(n.uniqueId, (meta.schema?.fields ?? []).map((f) => f.name));
    (env.existing as Set<string>).add(n.uniqueId);
  });

  const compiledSelect = new Map<string, { sql: string; ephemerals: string[] }>();
  const render = async (node: DbtNode, source: string): Promise<{ sql: string; ephemerals: string[] }> => {
    for (let pass = 1; ; pass++) {
      const capture: RenderCapture = { refs: [], sources: [], config: [], ephemerals: new Set() };
      const sql = env.jinja.renderString(source, node.path, renderNames(env, node, capture, relation));
      // run_query / statement asked for queries not run yet: run them, then render again with their rows.
      const pending = [...env.queries!].filter(([, v]) => v === null).map(([q]) => q);
      if (!pending.length) return { sql, ephemerals: [...capture.ephemerals] };
      if (pass === MAX_QUERY_PASSES) throw new DbtCompilerError(`${node.path}: run_query still asked for new queries after ${MAX_QUERY_PASSES} rounds`);
      await Promise.all(pending.map(async (q) => { env.queries!.set(q, toTable(await hook.query(q)) as QueryTable); }));
    }
  };
  const selectOf = async (node: DbtNode): Promise<{ sql: string; ephemerals: string[] }> => {
    let c = compiledSelect.get(node.uniqueId);
    if (!c) {
      const own = await render(node, node.raw);
      // Ephemeral models this one reads, and theirs, hoisted as CTEs in dependency order.
      const all = new Set<string>();
      for (const e of own.ephemerals) { all.add(e); for (const x of (await selectOf(project.nodes.get(e)!)).ephemerals) all.add(x); }
      c = { sql: own.sql, ephemerals: topoOrder(project, all).map((n) => n.uniqueId) };
      compiledSelect.set(node.uniqueId, c);
    }
    return c;
  };
  const withCtes = async (node: DbtNode) => {
    const c = await selectOf(node);
    const ctes = await Promise.all(c.ephemerals.map(async (id) => ({ name: project.nodes.get(id)!.name, sql: (await selectOf(project.nodes.get(id)!)).sql })));
    return injectCtes(c.sql, ctes);
  };

  const failed: string[] = [];
  let compiled = 0;
  for (const node of topoOrder(project, graph.selected.map((n) => n.uniqueId))) {
    if (node.kind === 'model' && node.config.materialized === 'ephemeral') continue;
    const r = node.kind === 'test' ? relation(project.nodes.get(node.attachedTo ?? node.dependsOn[0]) ?? node) : relation(node);
    const meta: CompiledMeta = { relation: { project: r.database, dataset: r.schema, table: r.identifier }, materialized: node.config.materialized, strategy: node.kind };
    let sql = '';
    try {
      if (node.kind === 'model') {
        const select = await withCtes(node);
        const hooks = (list: string[]) => Promise.all(list.map((h) => render(node, h).then((x) => x.sql)));
        const existing = columns.get(node.uniqueId) ?? null;
        const [preHooks, postHooks] = [await hooks(node.config.pre_hook), await hooks(node.config.post_hook)];
        const m = materialize({ node, relation: r, sql: select, existingColumns: existing, preHooks, postHooks });
        sql = m.script;
        Object.assign(meta, { strategy: m.strategy, select, existingColumns: existing, onSchemaChange: String(node.config.on_schema_change ?? 'ignore'), preHooks, postHooks });
      } else if (node.kind === 'test') {
        sql = await testSql(env, node, relation, render);
      } else {
        sql = `-- seed ${node.path}: loaded from the CSV file by a load job`;
      }
      compiled++;
    } catch (err) {
      meta.error = (err as Error).message;
      sql = `-- not compiled: ${meta.error.replace(/\n/g, ' ')}`;
      failed.push(node.name);
      ctx.log.error('dbt: %s did not compile: %s', node.name, meta.error);
    }
    ctx.ti.xcomPush(node.uniqueId, sql);
    ctx.ti.xcomPush(`${node.uniqueId}.meta`, meta);
  }
  const ms = Math.round(performance.now() - started);
  ctx.log.info('dbt: compiled %d node(s) of %s in %d ms%s', compiled, project.name, ms, failed.length ? `; ${failed.length} failed: ${failed.join(', ')}` : '');
  return { compiled, failed, ms };
}

async function testSql(env: RenderEnv, node: DbtNode, relation: (n: DbtNode) => Relation,
  render: (node: DbtNode, source: string) => Promise<{ sql: string }>): Promise<string> {
  const { project } = env;
  if (!node.generic) return (await render(node, node.raw)).sql;
  const parent = project.nodes.get(node.attachedTo!)!;
  const byName = (name: string) => relation([...project.nodes.values()].find((n) => n.kind !== 'test' && n.name === name)!);
  const custom = env.jinja.macros[`test_${node.generic.name}`];
  if (!custom) return builtinTestSql(node.generic, relation(parent), byName);
  const names = renderNames(env, node, { refs: [], sources: [], config: [], ephemerals: new Set() }, relation);
  const kwargs = { ...node.generic.kwargs, model: relation(parent), column_name: node.generic.column, __keywords: true };
  return String(env.jinja.withNames(names, () => custom(kwargs)));
}

/** The nodes a task of `node` waits for, among those that have tasks. */
export function upstreamTasks(graph: DbtGraph, node: DbtNode): string[] {
  const chosen = new Set(graph.selected.map((n) => n.uniqueId));
  return taskUpstreams(graph.project, node).filter((id) => chosen.has(id));
}
