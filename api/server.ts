/**
 * The api-server: the REST API under /api/v1 (with its OpenAPI document), Server-Sent Events
 * under /api/v1/events, GET /health and /metrics, and the web UI's pages and static files.
 * `updraft api-server` runs it alone; `standalone` runs it beside the other services.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { OpenAPIHono, createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { KwargsCodec, Masker, UpdraftError, type ApiConfig, type DagBag, type Database, type SecretStore } from '../core/index.ts';
import { Auth, CSRF_HEADER } from './auth.ts';
import { mount } from './endpoint.ts';
import { ApiError, errorBody, invalid, unauthorized } from './errors.ts';
import { LiveHub } from './live.ts';
import { dagEndpoints } from './routes/dags.ts';
import { systemEndpoints } from './routes/system.ts';
import { tiEndpoints } from './routes/task-instances.ts';
import { errorSchema, loginSchema, meSchema } from './schemas.ts';
import { findTi } from './routes/util.ts';
import type { ApiContext } from './context.ts';

export interface ApiServerOptions {
  database: Database;
  dagBag: DagBag | null;
  /** Connections and variables (null: the server lists none). */
  store: SecretStore | null;
  config: ApiConfig;
  sessionSecret: string;
  host?: string;
  port?: number;
  /** Users beyond the config file's (standalone's generated admin). */
  extraUsers?: ApiConfig['users'];
  healthThresholdMs?: number;
  /** Parse every answer with its response schema (tests). */
  checkResponses?: boolean;
  /** The health report GET /health answers with. */
  health?: () => Promise<Record<string, unknown>>;
  /** Secrets to mask beyond the stored connections' and variables'. */
  secrets?: string[];
}

export interface ApiServer {
  readonly url: string;
  readonly app: OpenAPIHono;
  readonly live: LiveHub;
  close(): Promise<void>;
}

const UI_DIR = fileURLToPath(new URL('./ui/', import.meta.url));
const STATIC_TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.html': 'text/html; charset=utf-8' };

export async function createApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const host = opts.host ?? opts.config.host;
  const loopback = ['127.0.0.1', '::1', 'localhost'].includes(host);
  const auth = new Auth({ config: opts.config, extraUsers: opts.extraUsers, sessionSecret: opts.sessionSecret, loopback });
  const live = new LiveHub();
  const masker = await loadMasker(opts.store, opts.secrets ?? []);
  const ctx: ApiContext = {
    database: opts.database, dagBag: opts.dagBag, kwargs: KwargsCodec.fromEnv(), masker, live, store: opts.store,
    healthThresholdMs: opts.healthThresholdMs ?? 30_000,
  };
  const metrics = apiMetrics(live);

  const app = new OpenAPIHono({
    defaultHook: (result, c) => {
      if (!result.success) {
        const issues = result.error.issues.map((i) => ({ path: i.path.map(String), message: i.message }));
        return c.json(errorBody(invalid(`invalid request: ${issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`, issues)), 422);
      }
      return undefined;
    },
  });

  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    const route = c.req.routePath || 'unmatched';
    metrics.requests.inc({ method: c.req.method, route, status: String(c.res.status) });
    metrics.latency.observe({ method: c.req.method, route }, (performance.now() - started) / 1000);
  });

  app.onError((err, c) => {
    if (err instanceof ApiError) return c.json(errorBody(err), err.status as 400);
    if (err instanceof UpdraftError) {
      const status = /has no (run|task)|does not exist|unknown/i.test(err.message) ? 404 : 400;
      return c.json(errorBody(new ApiError(status, status === 404 ? 'not_found' : 'bad_request', err.message)), status);
    }
    process.stderr.write(`api-server: ${c.req.method} ${c.req.path} failed: ${(err as Error).stack ?? err}\n`);
    return c.json(errorBody(new ApiError(500, 'internal', `the server failed: ${(err as Error).message}`)), 500);
  });

  app.openAPIRegistry.registerComponent('securitySchemes', 'session', { type: 'apiKey', in: 'cookie', name: 'updraft_session' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });

  const api = new OpenAPIHono({ defaultHook: app.defaultHook });
  // Who is asking comes before what is asked: a stranger learns nothing, not even a validation error.
  api.use('*', async (c, next) => {
    if (!/\/auth\/log(in|out)$/.test(c.req.path) && !(await auth.identify(c))) throw unauthorized();
    await next();
  });
  api.openapi(createRoute({
    method: 'post', path: '/auth/login', summary: 'Log in: sets the session cookie', tags: ['Session'],
    request: { body: { content: { 'application/json': { schema: loginSchema } }, required: true } },
    responses: { 200: { description: 'Logged in', content: { 'application/json': { schema: meSchema } } }, default: { description: 'Error', content: { 'application/json': { schema: errorSchema } } } },
  }), (async (c: Context) => {
    const body = (c.req as unknown as { valid(k: 'json'): z.infer<typeof loginSchema> }).valid('json');
    const p = await auth.login(c, body.username, body.password);
    return c.json({ username: p.username, role: p.role, csrfToken: p.csrf, auth: auth.mode }, 200);
  }) as never);
  api.openapi(createRoute({
    method: 'post', path: '/auth/logout', summary: 'Log out: clears the session cookie', tags: ['Session'],
    responses: { 200: { description: 'Logged out', content: { 'application/json': { schema: z.object({ ok: z.boolean() }) } } } },
  }), (async (c: Context) => {
    auth.logout(c);
    return c.json({ ok: true }, 200);
  }) as never);
  mount(api, [...dagEndpoints, ...tiEndpoints, ...systemEndpoints(auth)], ctx, auth, opts.checkResponses ?? false);

  // Live updates: a DAG's grid, or every DAG's latest runs, and a TI's log lines.
  api.get('/events', async (c) => {
    Auth.check(await auth.identify(c), 'GET', 'viewer', undefined);
    const dagId = c.req.query('dagId') ?? null;
    return streamSSE(c, async (stream) => {
      let id = 0;
      const done = new Promise<void>((resolve) => stream.onAbort(resolve));
      const unsubscribe = live.subscribe(dagId, (event, data) => void stream.writeSSE({ event, data: JSON.stringify(data), id: String(++id) }).catch(() => undefined));
      await stream.writeSSE({ event: 'hello', data: JSON.stringify({ dagId }) });
      const ping = setInterval(() => void stream.writeSSE({ event: 'ping', data: '{}' }).catch(() => undefined), 25_000);
      await done;
      clearInterval(ping);
      unsubscribe();
    });
  });
  api.get('/events/logs', async (c) => {
    Auth.check(await auth.identify(c), 'GET', 'viewer', undefined);
    const q = z.object({ dagId: z.string(), runId: z.string(), taskId: z.string(), mapIndex: z.coerce.number().int().default(-1), try: z.coerce.number().int().min(0), after: z.coerce.number().int().min(0).default(0) }).safeParse(c.req.query());
    if (!q.success) throw invalid(`invalid query: ${q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const { ti } = await findTi(ctx, q.data.dagId, q.data.runId, q.data.taskId, q.data.mapIndex);
    return streamSSE(c, async (stream) => {
      const done = new Promise<void>((resolve) => stream.onAbort(resolve));
      const unsubscribe = live.subscribeLogs(ti.id, q.data.try, q.data.after, (event, data) => void stream.writeSSE({ event, data: JSON.stringify(data) }).catch(() => undefined));
      await done;
      unsubscribe();
    });
  });
  api.doc31('/openapi.json', { openapi: '3.1.0', info: { title: 'Updraft REST API', version: '1', description: `Every route needs a session cookie (POST /auth/login) or a bearer token; changes from a session also need the ${CSRF_HEADER} header.` } });
  api.notFound((c) => c.json(errorBody(new ApiError(404, 'not_found', `no route ${c.req.method} ${c.req.path}; the routes are listed in /api/v1/openapi.json`)), 404));
  app.route('/api/v1', api);

  app.get('/health', async (c) => c.json(opts.health ? await opts.health() : { metadatabase: { status: 'healthy' } }));
  app.get('/metrics', async (c) => c.text(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }));
  app.get('/static/:file', (c) => {
    const file = c.req.param('file');
    const type = STATIC_TYPES[path.extname(file)];
    if (!type || file.includes('..') || file.includes('/')) return c.text('not found', 404);
    try {
      return c.body(readFileSync(path.join(UI_DIR, file)), 200, { 'content-type': type, 'cache-control': 'no-cache' });
    } catch {
      return c.text('not found', 404);
    }
  });
  // Every other GET is a page of the UI: one document, the client routes by path.
  const shell = readFileSync(path.join(UI_DIR, 'index.html'), 'utf8');
  app.get('*', (c) => c.html(shell));

  await live.start(ctx);
  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: host, port: opts.port ?? opts.config.port ?? 8080 }, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}`, app, live,
    async close() {
      await live.stop();
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Secrets of stored connections and sensitive variables: what logs and XComs must not show. */
async function loadMasker(store: SecretStore | null, extra: string[]): Promise<Masker> {
  const m = new Masker();
  m.addAll(extra);
  if (!store) return m;
  try {
    for (const c of await store.listConnections()) m.addConnection(c);
    for (const v of await store.listVariables()) m.addFrom(v.value, v.key);
  } catch {
    // A key this server lacks: masking then relies on what the workers masked when writing.
  }
  return m;
}

function apiMetrics(live: LiveHub) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'updraft_api_' });
  return {
    registry,
    requests: new Counter({ name: 'updraft_api_requests_total', help: 'API and UI requests', labelNames: ['method', 'route', 'status'], registers: [registry] }),
    latency: new Histogram({ name: 'updraft_api_request_seconds', help: 'Request latency', labelNames: ['method', 'route'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5], registers: [registry] }),
    pages: new Gauge({ name: 'updraft_api_live_pages', help: 'Pages receiving live updates', registers: [registry], collect() { this.set(live.pages); } }),
  };
}

