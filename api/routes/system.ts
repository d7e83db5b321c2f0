/**
 * Everything around the DAGs: triggers and the service processes (triggerers with capacity and
 * loop lag), pools, connections and variables (admins only, secrets masked), datasets and their
 * events, import errors; and the session (login, logout, who am I).
 */
import { z } from '@hono/zod-openapi';
import { Masker, isSensitiveKey, queries } from '../../core/index.ts';
import { endpoint, type Endpoint } from '../endpoint.ts';
import { notFound } from '../errors.ts';
import {
  connectionsSchema, datasetEventsSchema, datasetsSchema, importErrorsSchema, jobsSchema, meSchema, pageQuery, poolsSchema,
  triggersSchema, variablesSchema,
} from '../schemas.ts';
import type { Auth } from '../auth.ts';

const MASK = '***';

export function systemEndpoints(auth: Auth): Endpoint[] {
  return [
    endpoint({ method: 'get', path: '/triggers', summary: 'Triggers with the TIs waiting on each', tag: 'Triggers', role: 'viewer', query: pageQuery, response: triggersSchema },
      async ({ query }, ctx) => {
        const { rows, total } = await queries.browse.triggersPage(ctx.database.db, query);
        return { triggers: rows, total };
      }),

    endpoint({
      method: 'get', path: '/jobs', summary: 'Scheduler, worker and triggerer processes: heartbeat, health, and what triggerers report (capacity, loop lag)', tag: 'Triggers', role: 'viewer', response: jobsSchema,
      query: z.object({ jobType: z.enum(['scheduler', 'worker', 'triggerer']).optional() }),
    }, async ({ query }, ctx) => {
      const rows = await queries.browse.listJobs(ctx.database.db, query.jobType);
      return {
        jobs: rows.map(({ info, ...r }) => {
          const i = (info ?? {}) as { capacity?: number; running?: number; loopLagMs?: number };
          return {
            ...r, healthy: r.state === 'running' && r.ageSeconds * 1000 <= ctx.healthThresholdMs,
            capacity: i.capacity ?? null, running: i.running ?? null, loopLagMs: i.loopLagMs ?? null,
          };
        }),
      };
    }),

    endpoint({ method: 'get', path: '/pools', summary: 'Pools with the slots in use and open', tag: 'Pools', role: 'viewer', response: poolsSchema },
      async (_, ctx) => ({
        pools: (await queries.pools.listPools(ctx.database.db)).map((p) => ({ ...p, open: p.slots < 0 ? null : Math.max(0, p.slots - p.used) })),
      })),

    endpoint({ method: 'get', path: '/connections', summary: 'Connections in the metadata database, passwords and secret extras masked', tag: 'Connections', role: 'admin', response: connectionsSchema },
      async (_, ctx) => ({
        connections: (await ctx.store?.listConnections() ?? []).map((c) => {
          const m = new Masker();
          m.addConnection(c);
          return {
            connId: c.connId, connType: c.connType, host: c.host, port: c.port, login: c.login, schema: c.schema, description: c.description,
            password: c.password === null ? null : MASK, extra: m.maskValue(c.extra),
          };
        }),
      })),

    endpoint({ method: 'get', path: '/variables', summary: 'Variables; values of sensitive-looking keys masked', tag: 'Variables', role: 'admin', response: variablesSchema },
      async (_, ctx) => ({
        variables: (await ctx.store?.listVariables() ?? []).map((v) => ({ key: v.key, value: isSensitiveKey(v.key) ? MASK : ctx.masker.mask(v.value), description: v.description })),
      })),

    endpoint({ method: 'get', path: '/datasets', summary: 'Datasets with producing tasks, consuming DAGs and their latest event', tag: 'Datasets', role: 'viewer', response: datasetsSchema },
      async (_, ctx) => ({ datasets: await queries.datasets.listDatasets(ctx.database.db) })),

    endpoint({
      method: 'get', path: '/datasets/events', summary: 'A dataset\'s events, newest first', tag: 'Datasets', role: 'viewer', response: datasetEventsSchema,
      query: z.object({ uri: z.string().min(1), limit: z.coerce.number().int().min(1).max(1000).default(100) }),
    }, async ({ query }, ctx) => {
      const events = await queries.datasets.eventsOfDataset(ctx.database.db, query.uri, query.limit);
      if (!events) throw notFound(`dataset "${query.uri}"`, 'GET /api/v1/datasets lists them');
      return { events };
    }),

    endpoint({ method: 'get', path: '/import-errors', summary: 'DAG files that failed to import', tag: 'DAGs', role: 'viewer', response: importErrorsSchema },
      async (_, ctx) => ({ importErrors: await queries.dags.listImportErrors(ctx.database.db) })),

    endpoint({ method: 'get', path: '/auth/me', summary: 'Who this session is, and the CSRF token to send with changes', tag: 'Session', role: 'viewer', response: meSchema },
      async ({ principal }) => ({ username: principal.username, role: principal.role, csrfToken: principal.csrf, auth: auth.mode })),
  ];
}
