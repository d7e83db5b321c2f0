/**
 * Task instances: a run's TIs, one TI with its tries and the trigger it waits on, logs by try,
 * XComs, rendered template fields; clear (with downstream) and mark success or failed.
 */
import { z } from '@hono/zod-openapi';
import { Masker, TiAction, changeTaskInstance, queries } from '../../core/index.ts';
import { endpoint, type Endpoint } from '../endpoint.ts';
import {
  actionResultSchema, logsSchema, pageQuery, renderedSchema, tiActionSchema, tiDetailSchema, tisSchema, xcomsSchema,
} from '../schemas.ts';
import type { ApiContext } from '../context.ts';
import { runParams } from './dags.ts';
import { findRun, findTi } from './util.ts';

const TAG = 'Task instances';
const tiParams = runParams.extend({ taskId: z.string().min(1).openapi({ param: { name: 'taskId', in: 'path' } }) });
const mapQuery = z.object({ mapIndex: z.coerce.number().int().min(-1).default(-1) });

/** Field names that hold SQL, and values that read like it, are shown formatted. */
const SQL_FIELD = /(^|_)(sql|query|bql)$/i;
const LOOKS_LIKE_SQL = /^\s*(--[^\n]*\n\s*)*(select|with|insert|merge|create|update|delete|declare|begin)\b/i;

/** Dotted paths of the string fields that hold SQL, nested ones too (a BigQuery job's `configuration.query.query`). */
function sqlPaths(value: unknown, prefix = ''): string[] {
  if (!value || typeof value !== 'object') return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => {
    const at = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'string') return SQL_FIELD.test(k) || LOOKS_LIKE_SQL.test(v) ? [at] : [];
    return Array.isArray(v) ? [] : sqlPaths(v, at);
  });
}

/** Trigger kwargs as stored (sealed or plain), with every secret in them masked. */
function shownKwargs(ctx: ApiContext, stored: string): unknown {
  let kwargs: Record<string, unknown>;
  try {
    kwargs = ctx.kwargs.open(stored);
  } catch {
    return { note: 'sealed with a key this server does not have' };
  }
  const m = new Masker();
  m.addAll(ctx.masker.secrets());
  m.addFrom(kwargs);
  return m.maskValue(kwargs);
}

export const tiEndpoints: Endpoint[] = [
  endpoint({
    method: 'get', path: '/dags/{dagId}/runs/{runId}/tasks', summary: 'A run\'s task instances', tag: TAG, role: 'viewer', params: runParams, response: tisSchema,
    query: pageQuery.extend({ taskId: z.string().optional(), state: z.string().optional() }),
  }, async ({ params, query }, ctx) => {
    const run = await findRun(ctx, params.dagId, params.runId);
    const { rows, total } = await queries.browse.runTis(ctx.database.db, run.id, query, query);
    return { taskInstances: rows.map(({ id: _id, triggerId: _t, ...r }) => r), total };
  }),

  endpoint({ method: 'get', path: '/dags/{dagId}/runs/{runId}/tasks/{taskId}', summary: 'One TI: tries, and the trigger it waits on', tag: TAG, role: 'viewer', params: tiParams, query: mapQuery, response: tiDetailSchema },
    async ({ params, query }, ctx) => {
      const { ti } = await findTi(ctx, params.dagId, params.runId, params.taskId, query.mapIndex);
      const history = await queries.browse.tiHistory(ctx.database.db, ti.id);
      const trigger = ti.triggerId !== null && ti.state === 'deferred' ? await queries.browse.getTrigger(ctx.database.db, ti.triggerId) : null;
      const { id: _id, triggerId: _t, ...rest } = ti;
      // The current try is in the history only once it has ended; a running or deferred one is added from the live row.
      const current = ti.tryNumber > 0 && !history.some((h) => h.tryNumber === ti.tryNumber)
        ? [{ tryNumber: ti.tryNumber, state: ti.state, workerId: ti.workerId, startDate: ti.startDate, endDate: ti.endDate, duration: ti.duration, error: ti.error }]
        : [];
      return {
        ...rest, dagId: params.dagId, runId: params.runId, tries: [...history, ...current],
        trigger: trigger && { ...trigger, kwargs: shownKwargs(ctx, trigger.kwargs) },
      };
    }),

  endpoint({
    method: 'get', path: '/dags/{dagId}/runs/{runId}/tasks/{taskId}/logs', summary: 'Log lines of one try (default: the current), secrets masked', tag: TAG, role: 'viewer', params: tiParams, response: logsSchema,
    query: mapQuery.extend({ try: z.coerce.number().int().min(0).optional(), after: z.coerce.number().int().min(0).default(0), limit: z.coerce.number().int().min(1).max(10_000).default(5000) }),
  }, async ({ params, query }, ctx) => {
    const { ti } = await findTi(ctx, params.dagId, params.runId, params.taskId, query.mapIndex);
    const tryNumber = query.try ?? ti.tryNumber;
    const lines = await queries.browse.logsAfter(ctx.database.db, ti.id, tryNumber, query.after, query.limit + 1);
    return { tryNumber, more: lines.length > query.limit, lines: lines.slice(0, query.limit).map((l) => ({ ...l, message: ctx.masker.mask(l.message) })) };
  }),

  endpoint({ method: 'get', path: '/dags/{dagId}/runs/{runId}/tasks/{taskId}/xcoms', summary: 'XComs a task pushed in this run (all map indexes)', tag: TAG, role: 'viewer', params: tiParams, response: xcomsSchema },
    async ({ params }, ctx) => {
      const run = await findRun(ctx, params.dagId, params.runId);
      const rows = await queries.xcom.listXComs(ctx.database.db, run.id, params.taskId);
      return { xcoms: rows.map((r) => ({ mapIndex: r.mapIndex, key: r.key, value: ctx.masker.maskValue(r.value), createdAt: r.createdAt })) };
    }),

  endpoint({ method: 'get', path: '/dags/{dagId}/runs/{runId}/tasks/{taskId}/rendered', summary: 'Template fields as rendered for the latest try', tag: TAG, role: 'viewer', params: tiParams, query: mapQuery, response: renderedSchema },
    async ({ params, query }, ctx) => {
      const { ti } = await findTi(ctx, params.dagId, params.runId, params.taskId, query.mapIndex);
      const r = await queries.rendered.readRendered(ctx.database.db, ti.id);
      const fields = ctx.masker.maskValue(r?.fields ?? {});
      const sqlFields = sqlPaths(fields);
      return { tryNumber: r?.tryNumber ?? null, fields, sqlFields };
    }),

  endpoint({ method: 'post', path: '/dags/{dagId}/runs/{runId}/tasks/{taskId}/actions', summary: 'Clear a TI (and downstream), or mark it success or failed', tag: TAG, role: 'admin', params: tiParams, query: z.object({ mapIndex: z.coerce.number().int().min(-1).optional() }), body: tiActionSchema, response: actionResultSchema },
    async ({ params, query, body }, ctx) => {
      await findRun(ctx, params.dagId, params.runId);
      const r = await changeTaskInstance(ctx.database, { ...params, mapIndex: query.mapIndex, downstream: body.downstream }, body.action as TiAction);
      ctx.live.poke();
      return { changed: r.tiIds.length, killedTriggers: r.killedTriggers.length };
    }),
];
