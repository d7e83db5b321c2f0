/**
 * The HTTP operator, sensor and triggers in real runs (scheduler, worker and triggerer on an
 * in-memory database) against a real HTTP server: pagination inside one trigger run, a large
 * event by reference, the deferrable sensor, masking, mapped deferrals, and serialization.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import {
  dag, openDatabase, queries, DagBag, DagDefinitionError, TaskState, serializeTrigger, deserializeTrigger, validateConnection, type Database,
} from '../../../core/index.ts';
import { HttpSensor, HttpTrigger, HttpSensorTrigger, closeHttpPools } from '../../../providers/http/index.ts';
import { EVENT_XCOM_KEY } from '../../../core/db/queries/trigger-events.ts';
import { runDagLocally } from '../../../cli/local-run.ts';
import { fixture } from '../../triggerer/harness.ts';
import { TestHttpServer, json } from '../../helpers/http-server.ts';
import { waitFor } from '../../helpers/pg.ts';

let server: TestHttpServer;
let bag: DagBag;
let database: Database;

beforeAll(async () => {
  server = await TestHttpServer.start();
  process.env.UPDRAFT_CONN_TEST_HTTP = JSON.stringify({ conn_type: 'http', host: server.url });
  process.env.UPDRAFT_CONN_TEST_HTTP_SECURE = JSON.stringify({ conn_type: 'http', host: server.url, login: 'svc-user', password: 'basic-secret-5521', extra: { token: 'bearer-secret-8832' } });
  bag = await DagBag.load(fixture('http'));
  expect([...bag.errors]).toEqual([]);
});
afterAll(async () => {
  delete process.env.UPDRAFT_CONN_TEST_HTTP;
  delete process.env.UPDRAFT_CONN_TEST_HTTP_SECURE;
  await closeHttpPools();
  await server.close();
});
beforeEach(async () => {
  server.reset();
  database = await openDatabase({ dataDir: 'memory://' });
  await database.migrate();
});
afterEach(async () => { await database.close(); });

const run = (dagId: string) => runDagLocally(database, bag, bag.get(dagId), {});
const runPkOf = async (runId: string) => (await queries.dagRuns.getRun(database.db, runId))[0].id;
const xcom = (runPk: number, taskId: string, key = 'return_value', mapIndex = -1) => queries.xcom.readXCom(database.db, runPk, taskId, key, mapIndex);
const logText = async (tiId: number) => (await queries.logs.readLogs(database.db, tiId)).map((l) => l.message).join('\n');

describe('HTTP operators in real runs', () => {
  it('walks 50 Link-header pages inside one trigger run: one deferral, one resume, 50 requests', async () => {
    server.route('/pages', (q, res) => {
      const page = Number(q.url.searchParams.get('page'));
      const headers: Record<string, string> = page < 50 ? { link: `<${server.url}/pages?page=${page + 1}>; rel="next"` } : {};
      json(res, 200, { page }, headers);
    });
    const result = await run('http_pages');
    expect(result.state).toBe('success');
    const [ti] = result.taskInstances;
    expect(ti).toMatchObject({ state: TaskState.SUCCESS, tryNumber: 1 });
    expect(await xcom(await runPkOf(result.runId), 'pages')).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(server.hits('/pages')).toHaveLength(50);
    const log = await logText(ti.id);
    expect(log.match(/deferred on trigger http\.HttpTrigger/g)).toHaveLength(1);
    expect(log).toContain('50 page(s) fetched in this trigger run');
    // One try, resumed once: a single history row.
    const tries = await database.rows<{ n: number }>(sql`select count(*)::int as n from task_instance_history where ti_id = ${ti.id}`);
    expect(tries[0].n).toBe(1);
  });

  it('sends a 5 MB response to the task by reference through the XCom storage', async () => {
    const blob = 'x'.repeat(5 * 1024 * 1024);
    server.route('/big', (_q, res) => json(res, 200, { blob }));
    const result = await run('http_big');
    expect(result.state).toBe('success');
    const runPk = await runPkOf(result.runId);
    expect(await xcom(runPk, 'big')).toEqual({ length: blob.length, allX: true });
    const [stored] = await database.rows<{ codec: string | null; size: number | null }>(
      sql`select codec, size from xcom where run_pk = ${runPk} and key = ${EVENT_XCOM_KEY}`);
    expect(stored.codec).toBe('gzip');
    expect(stored.size).toBeGreaterThan(5 * 1024 * 1024);
    // The trigger row never held the payload: its event went to the XCom row.
    const event = await xcom(runPk, 'big', EVENT_XCOM_KEY) as { body: { blob: string } };
    expect(event.body.blob).toHaveLength(blob.length);
  });

  it('the deferrable sensor pokes 404, 404, then passes its JSON-path check on the 200', async () => {
    const route = (path: string) => server.route(path, (_q, res, n) => (n < 3 ? json(res, 404, { error: 'no such job' }) : json(res, n === 3 ? 200 : 500, { job: { state: 'ready' } })));
    // The endpoint is templated with the run id's length; serve whatever it renders to.
    for (let len = 1; len < 80; len++) route(`/status/${len}`);
    const result = await run('http_sensor');
    expect(result.state).toBe('success');
    const hits = server.requests.filter((r) => r.path.startsWith('/status/'));
    expect(hits).toHaveLength(3);
    const log = await logText(result.taskInstances[0].id);
    expect(log.match(/not yet \(status 404, poke \d\)/g)).toHaveLength(2);
    expect(await xcom(await runPkOf(result.runId), 'wait_ready')).toEqual({ job: { state: 'ready' } });
  });

  it('a sensor with a function check pokes from the worker', async () => {
    server.route('/status-worker', (_q, res, n) => json(res, 200, { job: { state: n < 3 ? 'running' : 'ready' } }));
    const result = await run('http_sensor_worker');
    expect(result.state).toBe('success');
    expect(server.hits('/status-worker')).toHaveLength(3);
  });

  it('refuses a deferrable sensor with a function check when the DAG is defined', () => {
    expect(() => dag({ dagId: 'bad_sensor', schedule: null }, () => {
      new HttpSensor({ taskId: 's', endpoint: '/x', deferrable: true, responseCheck: () => true });
    })).toThrow(DagDefinitionError);
    expect(() => dag({ dagId: 'bad_sensor2', schedule: null }, () => {
      new HttpSensor({ taskId: 's', endpoint: '/x', deferrable: true, responseCheck: () => true });
    })).toThrow(/replace responseCheck with a declarative check/);
  });

  it('never shows the bearer token or the basic password in task logs, async or deferred', async () => {
    server.route('/echo-auth', (q, res) => json(res, 200, { authorization: q.headers.authorization }));
    const result = await run('http_secure');
    expect(result.state).toBe('success');
    for (const ti of result.taskInstances) {
      const log = await logText(ti.id);
      expect(log).toContain('Bearer ***');
      expect(log).not.toContain('bearer-secret-8832');
      expect(log).not.toContain('basic-secret-5521');
    }
    expect(server.hits('/echo-auth').every((r) => r.headers.authorization === 'Bearer bearer-secret-8832')).toBe(true);
  });

  it('runs responseCheck on resume and fails the task when it returns false', async () => {
    server.route('/check', (q, res) => json(res, 200, { ok: false, got: JSON.parse(q.body) }));
    const result = await run('http_checked');
    expect(result.state).toBe('failed');
    expect(result.taskInstances[0].error).toMatch(/HttpResponseCheckFailed: task "checked": responseCheck returned false for POST \/check \(status 200\)/);
    expect(JSON.parse(server.hits('/check')[0].body)).toEqual({ ask: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/) });
    expect(server.hits('/check')).toHaveLength(1);
  });

  it('defers every TI of a mapped function task through deferredRequest', async () => {
    for (let i = 1; i <= 5; i++) server.route(`/item/${i}`, (_q, res) => json(res, 200, { id: i }));
    const result = await run('http_mapped');
    expect(result.state).toBe('success');
    const runPk = await runPkOf(result.runId);
    expect(await Promise.all([0, 1, 2, 3, 4].map((i) => xcom(runPk, 'fetch', 'return_value', i)))).toEqual([10, 20, 30, 40, 50]);
  });
});

describe('HTTP triggers', () => {
  it('round-trip through serialize and deserialize, and identical waits serialize identically', () => {
    const trigger = new HttpTrigger({
      connId: 'api', endpoint: '/v1/items', method: 'post', query: { q: 'a', n: [1, 2] }, headers: { 'x-a': 'b' }, json: { k: [1] },
      retry: { maxAttempts: 3 }, paginate: { pagination: { style: 'cursor', cursorPath: 'next', param: 'c' }, maxPages: 10 },
    });
    const stored = serializeTrigger(trigger);
    expect(stored.name).toBe('http.HttpTrigger');
    expect(stored.kwargs).toMatchObject({ method: 'POST', connId: 'api' });
    const back = deserializeTrigger(JSON.parse(JSON.stringify(stored)));
    expect(back).toBeInstanceOf(HttpTrigger);
    expect(serializeTrigger(back)).toEqual(stored);
    const sensor = new HttpSensorTrigger({ connId: 'api', endpoint: '/ready', check: { jsonPath: 'state', equals: 'done' }, pokeIntervalMs: 500 });
    const s = serializeTrigger(sensor);
    expect(serializeTrigger(deserializeTrigger(JSON.parse(JSON.stringify(s))))).toEqual(s);
    expect(JSON.stringify(serializeTrigger(new HttpSensorTrigger({ connId: 'api', endpoint: '/ready', check: { jsonPath: 'state', equals: 'done' }, pokeIntervalMs: 500 })))).toBe(JSON.stringify(s));
    expect(JSON.stringify(stored)).not.toMatch(/password|token/);
  });

  it('aborts the request in flight when the waiting task is killed', async () => {
    server.route('/hang', () => { /* never answers */ });
    const trigger = deserializeTrigger(serializeTrigger(new HttpTrigger({ connId: 'test_http', endpoint: '/hang' }))) as HttpTrigger;
    const lines: string[] = [];
    const log = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m), error: (m: string) => lines.push(m), debug() {} };
    trigger.runtime = {
      signal: new AbortController().signal, database, triggerId: 1, log,
      connection: async () => validateConnection({ connId: 'test_http', connType: 'http', host: server.url }, 'test'),
      variable: async () => { throw new Error('no variables here'); },
    };
    const first = trigger.run().next();
    await waitFor(() => server.hits('/hang').length === 1, 'the request to reach the server', 10_000);
    const killedAt = Date.now();
    await trigger.onKill();
    await expect(first).rejects.toThrow('the waiting task was killed');
    expect(Date.now() - killedAt).toBeLessThan(2_000);
  });

  it('refuses kwargs that are not plain data, naming the field', () => {
    expect(() => new HttpSensorTrigger({ connId: 'api', endpoint: '/x', check: {} as never })).toThrow(/at least one of status, jsonPath or contains/);
  });
});
