/**
 * `dbtTaskGroup(...)` builds a dbt project's tasks inside a DAG: one setup task that compiles
 * the run, a task per selected model and seed (in a task group per folder, or flat), and tests
 * after each model, after all of them, or not at all. `dbtDag(...)` is a DAG around one.
 */
import { BaseOperator, dag, taskGroup, type Context, type Dag, type DagOptions, type TaskGroupRef, type TaskOptions } from 'updraft';
import type { PollMode } from 'updraft/providers/bigquery';
import { GCP_DEFAULT_CONN_ID } from 'updraft/providers/bigquery';
import path from 'node:path';
import { compileRun, upstreamTasks, type CompileSummary } from './compile.ts';
import { loadDbtGraph, type DbtGraph, type DbtProjectOptions } from './load.ts';
import { DbtModelOperator, DbtSeedOperator, DbtTestOperator, type DbtNodeTaskOptions } from './operators.ts';
import type { DbtNode } from './project.ts';

export type TestBehavior = 'after_each' | 'after_all' | 'none';

export interface DbtTaskGroupOptions extends DbtProjectOptions {
  /** A google_cloud_platform connection; its project and location override the profile's. */
  connId?: string;
  /** The group's id (default: the project's name); null puts the tasks at the DAG's top level. */
  groupId?: string | null;
  fullRefresh?: boolean;
  testBehavior?: TestBehavior;
  /** A task group per model folder (default true); false names tasks by model only. */
  groupByFolder?: boolean;
  /** Give ephemeral models an empty task each (default false: they are only inlined). */
  ephemeralTasks?: boolean;
  /** Wait for jobs in the triggerer (default true) or on the worker's loop. */
  deferrable?: boolean;
  location?: string;
  pollCapMs?: number;
  pollMode?: PollMode;
  /** Labels on every job (beside dbt-model / dbt-test and dbt-project), e.g. for cost attribution. */
  labels?: Record<string, string>;
  /** Options for every task (retries, pool, priority…). */
  taskOptions?: Partial<Omit<TaskOptions, 'taskId'>>;
}

export interface DbtTaskGroup extends TaskGroupRef {
  readonly graph: DbtGraph;
  readonly compileTask: BaseOperator;
  /** Tasks by node unique id (`model.shop.orders`, `seed.shop.raw_customers`, `test.shop.…`). */
  readonly tasks: ReadonlyMap<string, BaseOperator>;
}

class DbtCompileOperator extends BaseOperator {
  constructor(options: TaskOptions, readonly graph: DbtGraph, readonly connId: string, readonly fullRefresh: boolean) {
    super(options);
  }

  async execute(ctx: Context): Promise<CompileSummary> {
    return compileRun(ctx, this.graph, { connId: this.connId, fullRefresh: this.fullRefresh });
  }
}

class DbtEphemeralOperator extends BaseOperator {
  async execute(): Promise<null> {
    return null;
  }
}

export function dbtTaskGroup(options: DbtTaskGroupOptions): DbtTaskGroup {
  const graph = loadDbtGraph(options);
  const groupId = options.groupId === undefined ? graph.project.name : options.groupId;
  let built: { compile: BaseOperator; tasks: Map<string, BaseOperator> } | null = null;
  const build = () => { built = buildTasks(graph, options); };
  if (groupId === null) {
    build();
    const { tasks, compile } = built!;
    return { groupId: '', graph, compileTask: compile, tasks, roots: () => [compile], leaves: () => leavesOf([compile, ...tasks.values()]) };
  }
  const ref = taskGroup(groupId, build);
  return { ...ref, graph, compileTask: built!.compile, tasks: built!.tasks };
}

function leavesOf(ops: BaseOperator[]): BaseOperator[] {
  return ops.filter((o) => o.downstreamIds.size === 0);
}

/** Nested task groups for `folders`, then `make` inside the innermost. */
function inFolders(folders: readonly string[], make: () => void): void {
  if (!folders.length) return make();
  taskGroup(folders[0], () => inFolders(folders.slice(1), make));
}

function buildTasks(graph: DbtGraph, options: DbtTaskGroupOptions): { compile: BaseOperator; tasks: Map<string, BaseOperator> } {
  const connId = options.connId ?? GCP_DEFAULT_CONN_ID;
  const testBehavior = options.testBehavior ?? 'after_each';
  const byFolder = options.groupByFolder ?? true;
  const compile = new DbtCompileOperator({ ...options.taskOptions, taskId: 'compile' }, graph, connId, options.fullRefresh ?? false);
  const tasks = new Map<string, BaseOperator>();
  const common = (node: DbtNode, taskId: string): DbtNodeTaskOptions => ({
    ...options.taskOptions, taskId, connId, compileTaskId: compile.taskId, node, projectName: graph.project.name,
    deferrable: options.deferrable, location: options.location, pollCapMs: options.pollCapMs, pollMode: options.pollMode, labels: options.labels,
    seedFile: node.kind === 'seed' ? path.join(graph.project.dir, node.path) : undefined,
  });
  const runnable = graph.selected.filter((n) => n.kind !== 'test' && (n.config.materialized !== 'ephemeral' || options.ephemeralTasks));
  const tests = testBehavior === 'none' ? [] : graph.selected.filter((n) => n.kind === 'test');
  const testsOf = new Map<string, DbtNode[]>();
  for (const t of tests) {
    const owner = t.attachedTo ?? (t.dependsOn.length === 1 ? t.dependsOn[0] : null);
    const key = testBehavior === 'after_each' && owner ? owner : '__all__';
    testsOf.set(key, [...(testsOf.get(key) ?? []), t]);
  }
  for (const node of runnable) {
    inFolders(byFolder ? node.folders : [], () => {
      const o = common(node, node.name);
      const op = node.kind === 'seed' ? new DbtSeedOperator(o)
        : node.config.materialized === 'ephemeral' ? new DbtEphemeralOperator({ ...options.taskOptions, taskId: node.name })
        : new DbtModelOperator(o);
      tasks.set(node.uniqueId, op);
      for (const t of testsOf.get(node.uniqueId) ?? []) tasks.set(t.uniqueId, new DbtTestOperator(common(t, t.name)));
    });
  }
  const afterAll = testsOf.get('__all__') ?? [];
  if (afterAll.length) taskGroup('tests', () => { for (const t of afterAll) tasks.set(t.uniqueId, new DbtTestOperator(common(t, t.name))); });

  // Edges: compile first; a node after the nodes it reads (through their tests, after_each).
  const exitOf = (id: string): BaseOperator[] => {
    const own = tasks.get(id);
    const ts = testBehavior === 'after_each' ? (testsOf.get(id) ?? []).map((t) => tasks.get(t.uniqueId)!) : [];
    return ts.length ? ts : own ? [own] : [];
  };
  for (const node of runnable) {
    const op = tasks.get(node.uniqueId)!;
    const ups = upstreamTasks(graph, node).flatMap(exitOf);
    if (!ups.length) compile.then(op);
    for (const up of ups) up.then(op);
  }
  // A test runs once every node it reads is built (a relationships test reads two).
  for (const t of testsOf.get('__all__') === undefined ? tests : tests.filter((x) => !afterAll.includes(x))) {
    for (const dep of upstreamTasks(graph, t)) { const up = tasks.get(dep); if (up) up.then(tasks.get(t.uniqueId)!); }
  }
  if (afterAll.length) {
    const finals = leavesOf([...runnable.map((n) => tasks.get(n.uniqueId)!)]);
    for (const t of afterAll) for (const f of finals.length ? finals : [compile]) f.then(tasks.get(t.uniqueId)!);
  }
  return { compile, tasks };
}

/** A DAG that runs one dbt project (`schedule`, `dagId` and the rest as for `dag()`). */
export function dbtDag(dagOptions: DagOptions, options: DbtTaskGroupOptions): Dag {
  return dag(dagOptions, () => { dbtTaskGroup({ groupId: null, ...options }); });
}
