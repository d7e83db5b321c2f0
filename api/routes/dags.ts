/** DAGs and their runs: list, detail, pause, the grid, trigger with conf, clear and mark. */
import { z } from '@hono/zod-openapi';
import {
  InvalidConfError, ScheduleKind, TiAction, changeDagRun, nextFireAfter, queries, scheduleKind, triggerDagRun, UpdraftError,
} from '../../core/index.ts';
import { endpoint, type Endpoint } from '../endpoint.ts';
import { ApiError, invalid, notFound } from '../errors.ts';
import {
  actionResultSchema, dagDetailSchema, dagPatchSchema, dagsSchema, gridSchema, pageQuery, runActionSchema, runSchema, runsSchema, triggerRunSchema,
} from '../schemas.ts';
import type { ApiContext } from '../context.ts';
import { findRun, paramsJsonSchema } from './util.ts';

export const dagParams = z.object({ dagId: z.string().min(1).openapi({ param: { name: 'dagId', in: 'path' } }) });
export const runParams = dagParams.extend({ runId: z.string().min(1).openapi({ param: { name: 'runId', in: 'path' } }) });

const TAG = 'DAGs';
const boolQuery = z.enum(['true', 'false']).transform((v) => v === 'true');

function nextRun(row: { schedule: string | null; timezone: string; isPaused: boolean }): Date | null {
  if (!row.schedule || row.isPaused || scheduleKind(row.schedule) !== ScheduleKind.CRON) return null;
  try {
    return nextFireAfter(row.schedule, row.timezone, new Date());
  } catch {
    return null;
  }
}

export const runSummary = (l: { run_id: string; state: string; logical_date: string; run_type: string }) => ({ runId: l.run_id, state: l.state, logicalDate: new Date(l.logical_date), runType: l.run_type });

async function dagRow(ctx: ApiContext, dagId: string) {
  const row = await queries.browse.getDag(ctx.database.db, dagId);
  if (!row || !row.isActive) throw notFound(`DAG "${dagId}"`, 'GET /api/v1/dags lists them, and GET /api/v1/import-errors shows files that failed to import');
  return row;
}

export const dagEndpoints: Endpoint[] = [
  endpoint({
    method: 'get', path: '/dags', summary: 'DAGs with their latest runs', tag: TAG, role: 'viewer', response: dagsSchema,
    query: pageQuery.extend({ paused: boolQuery.optional(), search: z.string().optional(), tag: z.string().optional(), runs: z.coerce.number().int().min(0).max(25).default(5) }),
  }, async ({ query }, ctx) => {
    const { rows, total } = await queries.browse.dagsPage(ctx.database.db, query, query);
    const latest = await queries.browse.latestRuns(ctx.database.db, rows.map((r) => r.dagId), query.runs);
    return {
      total,
      dags: rows.map((r) => ({
        ...r, nextRun: nextRun(r),
        latestRuns: latest.filter((l) => l.dag_id === r.dagId).map(runSummary),
      })),
    };
  }),

  endpoint({ method: 'get', path: '/dags/{dagId}', summary: 'One DAG with its tasks and params schema', tag: TAG, role: 'viewer', params: dagParams, response: dagDetailSchema },
    async ({ params }, ctx) => {
      const row = await dagRow(ctx, params.dagId);
      const s = row.serialized as { tasks?: Record<string, unknown>[]; datasetSchedule?: unknown; maxActiveRuns?: number; maxActiveTasks?: number; catchup?: boolean };
      const latest = await queries.browse.latestRuns(ctx.database.db, [row.dagId], 5);
      return {
        ...row, nextRun: nextRun(row),
        latestRuns: latest.map(runSummary),
        tasks: (s.tasks ?? []).map((t) => ({
          taskId: t.taskId, operator: t.operator, mode: t.mode, upstream: t.upstream, downstream: t.downstream, groupId: t.groupId ?? null,
          mapped: t.mapped ?? null, triggerRule: t.triggerRule, retries: t.retries, pool: t.pool, outlets: t.outlets ?? [],
        })),
        datasetSchedule: s.datasetSchedule ?? null, maxActiveRuns: s.maxActiveRuns ?? null, maxActiveTasks: s.maxActiveTasks ?? null, catchup: s.catchup ?? null,
        paramsSchema: paramsJsonSchema(ctx.dagBag?.dags.get(row.dagId)),
        importError: ctx.dagBag?.errors.get(row.fileloc) ?? null,
      };
    }),

  endpoint({ method: 'patch', path: '/dags/{dagId}', summary: 'Pause or unpause a DAG', tag: TAG, role: 'admin', params: dagParams, body: dagPatchSchema, response: dagDetailSchema.pick({ dagId: true, isPaused: true }) },
    async ({ params, body }, ctx) => {
      await dagRow(ctx, params.dagId);
      await queries.dags.setPaused(ctx.database.db, params.dagId, body.isPaused);
      ctx.live.poke();
      return { dagId: params.dagId, isPaused: body.isPaused };
    }),

  endpoint({
    method: 'get', path: '/dags/{dagId}/grid', summary: 'Runs × tasks, newest run first', tag: TAG, role: 'viewer', params: dagParams, response: gridSchema,
    query: z.object({ limit: z.coerce.number().int().min(1).max(100).default(25), before: z.iso.datetime({ offset: true }).optional().describe('only runs with an earlier logical date (paging back)') }),
  }, async ({ params, query }, ctx) => {
    const grid = await gridOf(ctx, params.dagId, query.limit, query.before ? new Date(query.before) : undefined);
    if (!grid) await dagRow(ctx, params.dagId);
    return grid;
  }),

  endpoint({
    method: 'get', path: '/dags/{dagId}/runs', summary: 'A DAG\'s runs, newest first', tag: TAG, role: 'viewer', params: dagParams, response: runsSchema,
    query: pageQuery.extend({ state: z.enum(['queued', 'running', 'success', 'failed']).optional() }),
  }, async ({ params, query }, ctx) => {
    await dagRow(ctx, params.dagId);
    const { rows, total } = await queries.browse.runsPage(ctx.database.db, params.dagId, query, query.state);
    return { runs: rows, total };
  }),

  endpoint({ method: 'post', path: '/dags/{dagId}/runs', summary: 'Trigger a run; conf is validated by the DAG\'s params', tag: TAG, role: 'admin', params: dagParams, body: triggerRunSchema, response: runSchema, status: 201 },
    async ({ params, body }, ctx) => {
      const row = await dagRow(ctx, params.dagId);
      const dag = ctx.dagBag?.dags.get(row.dagId);
      if (!dag) throw new ApiError(409, 'dag_not_loaded', `DAG "${row.dagId}" is in the database but this server could not import ${row.fileloc}; fix the file (see GET /api/v1/import-errors) or restart the server`);
      try {
        const made = await triggerDagRun(ctx.database, dag, body.conf, { runId: body.runId });
        ctx.live.poke();
        return (await queries.dagRuns.getRunByPk(ctx.database.db, made.runPk))!;
      } catch (err) {
        if (err instanceof InvalidConfError) throw invalid(err.message, err.issues);
        if (err instanceof UpdraftError && /already has a run/.test(err.message)) throw new ApiError(409, 'conflict', err.message);
        throw err;
      }
    }),

  endpoint({ method: 'get', path: '/dags/{dagId}/runs/{runId}', summary: 'One run', tag: TAG, role: 'viewer', params: runParams, response: runSchema },
    async ({ params }, ctx) => findRun(ctx, params.dagId, params.runId)),

  endpoint({ method: 'post', path: '/dags/{dagId}/runs/{runId}/actions', summary: 'Clear a run (or its failed TIs), or mark it success or failed', tag: TAG, role: 'admin', params: runParams, body: runActionSchema, response: actionResultSchema },
    async ({ params, body }, ctx) => {
      await findRun(ctx, params.dagId, params.runId);
      const r = await changeDagRun(ctx.database, { dagId: params.dagId, runId: params.runId, onlyFailed: body.onlyFailed }, body.action as TiAction);
      ctx.live.poke();
      return { changed: r.tiIds.length, killedTriggers: r.killedTriggers.length };
    }),
];

interface GridTask {
  taskId: string;
  groupId: string | null;
  mapped: boolean;
}

/** Each DAG's task list by fingerprint: the grid reads 8 bytes of the dags row, not its serialized form. */
const gridTasksCache = new Map<string, { fingerprint: string; tasks: GridTask[] }>();

async function gridTasks(ctx: ApiContext, dagId: string): Promise<GridTask[] | null> {
  const head = await queries.browse.dagFingerprint(ctx.database.db, dagId);
  if (!head?.isActive) return null;
  const cached = gridTasksCache.get(dagId);
  if (cached?.fingerprint === head.fingerprint) return cached.tasks;
  const row = await queries.browse.getDag(ctx.database.db, dagId);
  if (!row) return null;
  const tasks = ((row.serialized as { tasks?: { taskId: string; groupId?: string | null; mapped?: string | null }[] }).tasks ?? [])
    .map((t) => ({ taskId: t.taskId, groupId: t.groupId ?? null, mapped: t.mapped === 'expand' }));
  gridTasksCache.set(dagId, { fingerprint: row.fingerprint, tasks });
  return tasks;
}

/** The grid: tasks in DAG order, the newest runs, and per run one cell per task; null: no such DAG. */
export async function gridOf(ctx: ApiContext, dagId: string, limit: number, before?: Date) {
  const tasks = await gridTasks(ctx, dagId);
  if (!tasks) return null;
  const runs = await queries.browse.gridRuns(ctx.database.db, dagId, limit, before);
  const cells = await queries.browse.gridCells(ctx.database.db, runs.map((r) => r.id));
  const taskIndex = new Map(tasks.map((t, i) => [t.taskId, i]));
  const runIndex = new Map(runs.map((r, i) => [r.id, i]));
  const grid: (string | Record<string, number> | null)[][] = runs.map(() => new Array(tasks.length).fill(null));
  for (const c of cells) {
    const ti = taskIndex.get(c.taskId);
    const ri = runIndex.get(c.runPk);
    if (ti === undefined || ri === undefined) continue;
    if (!tasks[ti].mapped) {
      grid[ri][ti] = c.state;
      continue;
    }
    const counts = (grid[ri][ti] ??= {}) as Record<string, number>;
    counts[c.state] = (counts[c.state] ?? 0) + c.n;
  }
  return { dagId, tasks, runs: runs.map(({ id: _id, ...r }) => r), cells: grid };
}
