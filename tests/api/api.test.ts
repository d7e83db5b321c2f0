/**
 * The REST API on real PostgreSQL, with a real scheduler, worker and triggerer running the
 * fixture DAG: every route, auth per role, CSRF, pagination, conf validation, actions, SSE.
 * The server parses each of its answers with the route's response schema (checkResponses).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DagBag, openSecrets, type Database, type SecretsSetup } from '../../core/index.ts';
import { Triggerer } from '../../triggerer/index.ts';
import { createApiServer, hashPassword, Auth, type ApiServer } from '../../api/index.ts';
import { drivers, waitFor } from '../helpers/pg.ts';
import { startServices, type Services } from '../helpers/flow-runs.ts';
import { ApiClient } from '../helpers/api-client.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/api/dags', import.meta.url));
const pg = drivers[1];
const WAREHOUSE_PASSWORD = 's3cret-warehouse-pass';

describe.skipIf(!pg.available)('REST API', () => {
  let database: Database;
  let cleanup: () => Promise<void>;
  let services: Services;
  let triggerer: Triggerer;
  let server: ApiServer;
  let secrets: SecretsSetup;
  let admin: ApiClient;
  let viewer: ApiClient;
  let runId: string;
  const dagPath = '/api/v1/dags/api_demo';

  beforeAll(async () => {
    ({ database, cleanup } = await pg.open());
    const bag = await DagBag.load(FIXTURES);
    expect([...bag.errors]).toEqual([]);
    services = await startServices(database, bag);
    triggerer = await Triggerer.create({ database, heartbeatMs: 500 });
    const dir = mkdtempSync(path.join(tmpdir(), 'updraft-api-'));
    secrets = await openSecrets({ secretsBackend: null, secretsFile: null, secretsCacheTtlMs: 0, secretKeyFile: path.join(dir, 'secret.key'), configFile: null }, database);
    await secrets.store.putConnection({
      connId: 'warehouse', connType: 'postgres', host: 'db.example.com', port: 5432, login: 'report', password: WAREHOUSE_PASSWORD,
      schema: 'analytics', extra: { sslmode: 'require', api_key: 'extra-secret-value' }, description: null,
    } as never);
    await secrets.store.putVariable('api_token', 'variable-secret-value');
    server = await createApiServer({
      database, dagBag: bag, store: secrets.store, sessionSecret: 'test-session-secret', port: 0, checkResponses: true, healthThresholdMs: 30_000,
      config: {
        auth: 'password', host: '127.0.0.1', port: 0, sessionTtlMs: 3_600_000,
        users: [
          { username: 'ada', role: 'admin', password: await hashPassword('ada-pass') },
          { username: 'val', role: 'viewer', password: await hashPassword('val-pass') },
        ],
        tokens: [{ name: 'ci', role: 'admin', hash: await hashPassword('ci-token-123') }, { name: 'ro', role: 'viewer', hash: await hashPassword('ro-token-456') }],
      },
    });
    admin = new ApiClient(server.url);
    viewer = new ApiClient(server.url);
    expect((await admin.login('ada', 'ada-pass')).status).toBe(200);
    expect((await viewer.login('val', 'val-pass')).status).toBe(200);
    const made = await admin.send('POST', `${dagPath}/runs`, { conf: { count: 3 }, runId: 'api_run_1' });
    expect(made.status).toBe(201);
    runId = made.body.runId;
    // Everything but the hour-long wait finishes; that one sits deferred on its trigger.
    await waitFor(async () => {
      const g = (await admin.get(`${dagPath}/grid`)).body;
      const cell = (t: string) => g.cells[0][g.tasks.findIndex((x: { taskId: string }) => x.taskId === t)];
      return cell('after_boom') === 'upstream_failed' && cell('query') === 'success' && cell('wait_long') === 'deferred' && cell('each')?.success === 3;
    }, 'the fixture run to settle', 90_000, 200);
  });

  afterAll(async () => {
    await server?.close();
    await triggerer?.stop();
    await services?.stop();
    await cleanup?.();
  });

  it('refuses every route without a login, in one error shape', async () => {
    const doc = (await admin.get('/api/v1/openapi.json')).body;
    const anon = new ApiClient(server.url);
    expect((await anon.get('/api/v1/openapi.json')).status).toBe(401);
    const paths = Object.entries(doc.paths as Record<string, Record<string, unknown>>);
    expect(paths.length).toBeGreaterThanOrEqual(18);
    for (const [p, methods] of paths) {
      for (const method of Object.keys(methods)) {
        if (p.startsWith('/auth/log')) continue;
        const url = `/api/v1${p.replace('{dagId}', 'api_demo').replace('{runId}', runId).replace('{taskId}', 'make')}`;
        const res = method === 'get' ? await anon.get(url) : await anon.send(method.toUpperCase() as 'POST', url, {});
        expect(res.status, `${method} ${p}`).toBe(401);
        expect(res.body.error).toMatchObject({ status: 401, code: 'unauthorized' });
      }
    }
    expect((await anon.get('/api/v1/events')).status).toBe(401);
    expect((await anon.get('/health')).status).toBe(200);
  });

  it('logs in with the right password only, and logs out', async () => {
    const c = new ApiClient(server.url);
    const wrong = await c.login('ada', 'nope');
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.message).toBe('wrong username or password');
    expect((await c.login('nobody', 'ada-pass')).status).toBe(401);
    expect((await c.login('ada', 'ada-pass')).status).toBe(200);
    const me = await c.get('/api/v1/auth/me');
    expect(me.body).toMatchObject({ username: 'ada', role: 'admin', auth: 'password' });
    expect(me.body.csrfToken).toMatch(/^[\w-]{20,}$/);
    await c.send('POST', '/api/v1/auth/logout');
    expect((await c.get('/api/v1/auth/me')).status).toBe(401);
  });

  it('lets a viewer read but not change, nor see connections and variables', async () => {
    expect((await viewer.get('/api/v1/dags')).status).toBe(200);
    const pause = await viewer.send('PATCH', dagPath, { isPaused: true });
    expect(pause.status).toBe(403);
    expect(pause.body.error.message).toContain('viewer');
    expect((await viewer.get('/api/v1/connections')).status).toBe(403);
    expect((await viewer.get('/api/v1/variables')).status).toBe(403);
    const ro = new ApiClient(server.url, 'ro-token-456');
    expect((await ro.get('/api/v1/dags')).status).toBe(200);
    expect((await ro.send('PATCH', dagPath, { isPaused: true })).status).toBe(403);
    expect((await new ApiClient(server.url, 'wrong-token').get('/api/v1/dags')).status).toBe(401);
  });

  it('needs the CSRF token for changes from a session, not from a bearer token', async () => {
    const noToken = await admin.send('PATCH', dagPath, { isPaused: true }, { csrf: false });
    expect(noToken.status).toBe(403);
    expect(noToken.body.error.message).toContain('x-csrf-token');
    const paused = await admin.send('PATCH', dagPath, { isPaused: true });
    expect(paused).toMatchObject({ status: 200, body: { dagId: 'api_demo', isPaused: true } });
    expect((await admin.get('/api/v1/dags?paused=true')).body.dags.map((d: { dagId: string }) => d.dagId)).toEqual(['api_demo']);
    const ci = new ApiClient(server.url, 'ci-token-123');
    expect((await ci.send('PATCH', dagPath, { isPaused: false })).body.isPaused).toBe(false);
  });

  it('pages and filters DAGs, with their latest runs', async () => {
    const first = await admin.get('/api/v1/dags?limit=1');
    expect(first.body.total).toBe(2);
    expect(first.body.dags.map((d: { dagId: string }) => d.dagId)).toEqual(['api_demo']);
    expect(first.body.dags[0].latestRuns[0]).toMatchObject({ runId: 'api_run_1', runType: 'manual' });
    expect((await admin.get('/api/v1/dags?limit=1&offset=1')).body.dags[0].dagId).toBe('api_other');
    expect((await admin.get('/api/v1/dags?tag=other')).body.dags.map((d: { dagId: string }) => d.dagId)).toEqual(['api_other']);
    expect((await admin.get('/api/v1/dags?search=OTH')).body.total).toBe(1);
    const bad = await admin.get('/api/v1/dags?limit=0');
    expect(bad.status).toBe(422);
    expect(bad.body.error.code).toBe('invalid_request');
    expect(bad.body.error.message).toContain('limit');
    expect((await admin.get('/api/v1/dags/nope')).status).toBe(404);
  });

  it('describes a DAG with its tasks and the JSON Schema of its params', async () => {
    const d = (await admin.get(dagPath)).body;
    expect(d.tasks.map((t: { taskId: string }) => t.taskId)).toEqual(expect.arrayContaining(['make', 'each', 'boom', 'after_boom', 'query', 'wait_long']));
    expect(d.tasks.find((t: { taskId: string }) => t.taskId === 'each').mapped).toBe('expand');
    expect(d.paramsSchema.properties.count).toMatchObject({ type: 'integer', minimum: 1, maximum: 10, default: 3, description: 'how many items to map over' });
  });

  it('validates a triggered run\'s conf with the DAG\'s params', async () => {
    const tooMany = await admin.send('POST', `${dagPath}/runs`, { conf: { count: 50 } });
    expect(tooMany.status).toBe(422);
    expect(tooMany.body.error.message).toContain('run conf is invalid');
    expect(tooMany.body.error.detail).toEqual([expect.objectContaining({ path: ['count'] })]);
    const wrongType = await admin.send('POST', `${dagPath}/runs`, { conf: { count: 'many' } });
    expect(wrongType.status).toBe(422);
    const badId = await admin.send('POST', `${dagPath}/runs`, { conf: {}, runId: 'has space' });
    expect(badId.status).toBe(422);
    expect(badId.body.error.detail[0].path).toEqual(['runId']);
    const dup = await admin.send('POST', `${dagPath}/runs`, { conf: {}, runId: 'api_run_1' });
    expect(dup.status).toBe(409);
  });

  it('shows the grid, runs and TIs', async () => {
    const g = (await admin.get(`${dagPath}/grid`)).body;
    const cell = (t: string) => g.cells[0][g.tasks.findIndex((x: { taskId: string }) => x.taskId === t)];
    expect(g.runs[0]).toMatchObject({ runId: 'api_run_1', state: 'running' });
    expect(cell('make')).toBe('success');
    expect(cell('each')).toEqual({ success: 3 });
    expect(cell('boom')).toBe('failed');
    expect(cell('wait_long')).toBe('deferred');
    expect((await admin.get(`${dagPath}/runs`)).body).toMatchObject({ total: 1, runs: [{ runId: 'api_run_1', conf: { count: 3 } }] });
    expect((await admin.get(`${dagPath}/runs?state=success`)).body.total).toBe(0);
    const tis = (await admin.get(`${dagPath}/runs/${runId}/tasks?taskId=each`)).body;
    expect(tis.taskInstances.map((t: { mapIndex: number }) => t.mapIndex)).toEqual([0, 1, 2]);
    expect((await admin.get(`${dagPath}/runs/${runId}/tasks?limit=2`)).body.taskInstances).toHaveLength(2);
    expect((await admin.get(`${dagPath}/runs/nope`)).status).toBe(404);
  });

  it('shows a deferred TI\'s trigger, and the triggerers with capacity', async () => {
    const ti = (await admin.get(`${dagPath}/runs/${runId}/tasks/wait_long`)).body;
    expect(ti.state).toBe('deferred');
    expect(ti.trigger).toMatchObject({ name: 'updraft.DateTimeTrigger' });
    expect(ti.trigger.kwargs.moment).toEqual(expect.any(String));
    expect(ti.trigger.triggererId).toMatch(/^triggerer-/);
    expect(ti.trigger.ageSeconds).toBeGreaterThanOrEqual(0);
    const triggers = (await admin.get('/api/v1/triggers')).body;
    expect(triggers.triggers.some((t: { waiting: { taskId: string }[] }) => t.waiting.some((w) => w.taskId === 'wait_long'))).toBe(true);
    const jobs = await waitFor(async () => {
      const j = (await admin.get('/api/v1/jobs?jobType=triggerer')).body.jobs;
      return j.length && j[0].capacity !== null ? j : null;
    }, 'a triggerer heartbeat with capacity');
    expect(jobs[0]).toMatchObject({ jobType: 'triggerer', healthy: true, capacity: 100_000 });
    expect(jobs[0].loopLagMs).toBeGreaterThanOrEqual(0);
    expect(jobs[0].triggers).toBeGreaterThanOrEqual(1);
  });

  it('serves logs by try, XComs and rendered SQL', async () => {
    const logs = (await admin.get(`${dagPath}/runs/${runId}/tasks/make/logs`)).body;
    expect(logs.tryNumber).toBe(1);
    expect(logs.lines.map((l: { message: string }) => l.message).join('\n')).toContain('making 3 items');
    const after = (await admin.get(`${dagPath}/runs/${runId}/tasks/make/logs?after=${logs.lines.at(-1).id}`)).body;
    expect(after.lines).toEqual([]);
    expect((await admin.get(`${dagPath}/runs/${runId}/tasks/boom/logs`)).body.lines.map((l: { message: string }) => l.message).join('\n')).toContain('boom on purpose');
    const x = (await admin.get(`${dagPath}/runs/${runId}/tasks/make/xcoms`)).body;
    expect(x.xcoms).toEqual([expect.objectContaining({ key: 'return_value', value: [0, 1, 2], mapIndex: -1 })]);
    const deferred = (await admin.get(`${dagPath}/runs/${runId}/tasks/wait_long`)).body;
    expect(deferred.tries).toEqual([expect.objectContaining({ tryNumber: 1, state: 'deferred' })]);
    const r = (await admin.get(`${dagPath}/runs/${runId}/tasks/query/rendered`)).body;
    expect(r.fields.sql).toBe('select 3 as n from api_demo_table');
    expect(r.sqlFields).toEqual(['sql']);
  });

  it('masks connection secrets and sensitive variables', async () => {
    const res = await admin.get('/api/v1/connections');
    expect(res.body.connections).toEqual([expect.objectContaining({ connId: 'warehouse', host: 'db.example.com', password: '***' })]);
    expect(res.body.connections[0].extra).toEqual({ sslmode: 'require', api_key: '***' });
    expect(JSON.stringify(res.body)).not.toContain(WAREHOUSE_PASSWORD);
    const vars = (await admin.get('/api/v1/variables')).body;
    expect(vars.variables).toEqual([expect.objectContaining({ key: 'api_token', value: '***' })]);
  });

  it('lists pools, datasets and import errors', async () => {
    const pools = (await admin.get('/api/v1/pools')).body.pools;
    expect(pools.find((p: { name: string }) => p.name === 'default_pool')).toMatchObject({ slots: 128 });
    expect((await admin.get('/api/v1/datasets')).body).toEqual({ datasets: [] });
    expect((await admin.get('/api/v1/datasets/events?uri=nope')).status).toBe(404);
    expect((await admin.get('/api/v1/import-errors')).body).toEqual({ importErrors: [] });
  });

  it('pushes grid changes over SSE when a TI changes, and clears with downstream', async () => {
    const stream = await admin.events('/api/v1/events?dagId=api_demo');
    try {
      await stream.next((e) => e.event === 'hello');
      const marked = await admin.send('POST', `${dagPath}/runs/${runId}/tasks/wait_long/actions`, { action: 'success' });
      expect(marked.body).toEqual({ changed: 1, killedTriggers: 1 });
      const ev = await stream.next((e) => e.event === 'grid' && e.data.cells.some((c: { taskId: string; value: string }) => c.taskId === 'wait_long' && c.value === 'success'));
      expect(ev.data.dagId).toBe('api_demo');
      const cleared = await admin.send('POST', `${dagPath}/runs/${runId}/tasks/boom/actions`, { action: 'clear', downstream: true });
      expect(cleared.body.changed).toBe(2);
      // Both run again: boom fails again, after_boom is upstream-failed again, pushed live.
      await stream.next((e) => e.event === 'grid' && e.data.cells.some((c: { taskId: string; value: string }) => c.taskId === 'boom' && c.value !== 'failed'));
      await stream.next((e) => e.event === 'grid' && e.data.cells.some((c: { taskId: string; value: string }) => c.taskId === 'boom' && c.value === 'failed'), 60_000);
      const history = (await admin.get(`${dagPath}/runs/${runId}/tasks/boom`)).body;
      expect(history.tryNumber).toBe(2);
      expect(history.tries.map((t: { tryNumber: number; state: string }) => [t.tryNumber, t.state])).toContainEqual([1, 'failed']);
    } finally {
      stream.close();
    }
  });

  it('marks a run, and clears only its failed TIs', async () => {
    await waitFor(async () => (await admin.get(`${dagPath}/runs/${runId}`)).body.state === 'failed', 'the run to fail again');
    const clearFailed = await admin.send('POST', `${dagPath}/runs/${runId}/actions`, { action: 'clear', onlyFailed: true });
    expect(clearFailed.body.changed).toBe(2);
    const marked = await admin.send('POST', `${dagPath}/runs/${runId}/actions`, { action: 'success' });
    expect(marked.status).toBe(200);
    const run = (await admin.get(`${dagPath}/runs/${runId}`)).body;
    expect(run.state).toBe('success');
    const bad = await admin.send('POST', `${dagPath}/runs/${runId}/actions`, { action: 'explode' });
    expect(bad.status).toBe(422);
  });

  it('publishes an OpenAPI document made from the same schemas', async () => {
    const doc = (await admin.get('/api/v1/openapi.json')).body;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/dags', '/dags/{dagId}/grid', '/dags/{dagId}/runs/{runId}/tasks/{taskId}/logs', '/connections']));
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['Dag', 'Grid', 'TaskInstanceDetail', 'Error']));
    expect(doc.paths['/dags/{dagId}/runs'].post.requestBody.content['application/json'].schema.$ref).toBe('#/components/schemas/TriggerRun');
  });

  it('refuses auth none unless bound to loopback', () => {
    const config = { auth: 'none' as const, host: '0.0.0.0', port: null, users: [], tokens: [], sessionTtlMs: 1000 };
    expect(() => new Auth({ config, sessionSecret: 'x', loopback: false })).toThrow(/only allowed on a loopback bind/);
    expect(() => new Auth({ config, sessionSecret: 'x', loopback: true })).not.toThrow();
  });
});
