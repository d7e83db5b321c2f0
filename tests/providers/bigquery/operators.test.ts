/**
 * BigQueryInsertJobOperator, its trigger and the coalesced poller against Updraft's emulator
 * through the real client (one emulator for the file). Real runs (scheduler, worker and
 * triggerer on an in-memory database) for deferrable and awaited jobs, a `.sql` template, a
 * job error and a cancel on mark-failed; the reattach rules with a task context built by hand
 * (the server counts the jobs); 300 jobs waited on through one poller, its per-job fallback and
 * a 503 burst.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { openDatabase, queries, DagBag, changeTaskInstance, TiAction, masker, type Connection, type Context, type Database } from '../../../core/index.ts';
import {
  BigQueryHook, BigQueryJobError, BigQueryInsertJobTrigger, JobPoller, jobIdFor, runInsertJob, resolveBigQueryTarget, startEmulator,
  type BigQueryJob, type Emulator, type InsertJobSpec,
} from '../../../providers/bigquery/index.ts';
import { runDagLocally } from '../../../cli/local-run.ts';
import { testBigQueryConnection } from '../../../providers/bigquery/connection-test.ts';
import { fixture } from '../../triggerer/harness.ts';

let emu: Emulator;
let bag: DagBag;
let database: Database;
let conn: Connection;

const stats = async () => (await (await fetch(`${emu.url}/emulator/stats`)).json()) as { requests: Record<string, number>; jobs: number };
const reset = () => fetch(`${emu.url}/emulator/reset`, { method: 'POST' });
const fault = (f: Record<string, unknown>) => fetch(`${emu.url}/emulator/faults`, { method: 'POST', body: JSON.stringify(f) });
const hook = () => new BigQueryHook(resolveBigQueryTarget(conn));

beforeAll(async () => {
  emu = await startEmulator({ jobDurationMs: 200 });
  conn = { connId: 'test_bq', connType: 'google_cloud_platform', description: null, host: null, schema: null, login: null, password: null, port: null, extra: { project: 'proj', location: 'US', api_endpoint: emu.url } } as Connection;
  process.env.UPDRAFT_CONN_TEST_BQ = JSON.stringify({ conn_type: 'google_cloud_platform', extra: conn.extra });
  await hook().client.createDataset('shop');
  await hook().query('create table `proj.shop.orders` as select i as id from range(0, 7) t(i)');
  bag = await DagBag.load(fixture('bigquery'));
  expect([...bag.errors]).toEqual([]);
});
afterAll(async () => {
  delete process.env.UPDRAFT_CONN_TEST_BQ;
  await emu?.close();
});
beforeEach(async () => {
  database = await openDatabase({ dataDir: 'memory://' });
  await database.migrate();
});
afterEach(async () => { await database?.close(); });

const xcom = async (runId: string, taskId: string) => {
  const [run] = await queries.dagRuns.getRun(database.db, runId);
  return queries.xcom.readXCom(database.db, run.id, taskId, 'return_value', -1);
};

describe('BigQueryInsertJobOperator in real runs', () => {
  it('deferrable: submits, waits in the triggerer, and returns the job summary; labels and the .sql template applied', async () => {
    const result = await runDagLocally(database, bag, bag.get('bq_deferrable'), { suffix: 'deferred' });
    expect(result.state).toBe('success');
    const summary = await xcom(result.runId, 'report') as { jobId: string; statementType: string; ddlTargetTable: unknown };
    expect(summary).toMatchObject({ statementType: 'CREATE_TABLE_AS_SELECT', ddlTargetTable: { datasetId: 'shop', tableId: 'report_deferred' } });
    expect(summary.jobId).toMatch(/^updraft_bq_deferrable_report_manual__[\w-]+_-1_1_[0-9a-f]{16}$/);
    const job = await hook().getJob(summary.jobId);
    expect(job.configuration?.labels).toEqual({ team: 'Data Eng', 'updraft-dag': 'bq_deferrable', 'updraft-task': 'report' });
    expect(String((job.configuration?.query as { query: string }).query)).toMatch(/^-- rendered by the task: \d{4}-\d\d-\d\d/);
    expect(await hook().query('select orders from `shop.report_deferred`')).toEqual([{ orders: 7 }]);
  });

  it('async: awaits the job on the worker\'s loop', async () => {
    const result = await runDagLocally(database, bag, bag.get('bq_async'), { suffix: 'awaited' });
    expect(result.state).toBe('success');
    expect(await xcom(result.runId, 'report')).toMatchObject({ statementType: 'CREATE_TABLE_AS_SELECT' });
    expect(await hook().tableExists('shop', 'report_awaited')).toBe(true);
  });

  it('a job error fails the task with BigQuery\'s reason, location and message', async () => {
    const result = await runDagLocally(database, bag, bag.get('bq_failing'), {});
    expect(result.state).toBe('failed');
    const ti = result.taskInstances.find((t) => t.taskId === 'broken')!;
    expect(ti.error).toMatch(/BigQueryJobError: BigQuery job updraft_bq_failing_broken_\S+ failed: notFound at query: Not found: .*no_such_table/);
  });

  it('mark-failed while deferred cancels the job: it ends stopped', async () => {
    const running = runDagLocally(database, bag, bag.get('bq_slow'), {});
    let jobId = '';
    for (const deadline = Date.now() + 30_000; !jobId;) {
      const rows = await database.rows<{ run_id: string; state: string }>(sql`select run_id, state from task_instances where task_id = 'slow'`).catch(() => []);
      const deferred = rows.find((r) => r.state === 'deferred');
      if (deferred) jobId = jobIdFor({ dagId: 'bq_slow', taskId: 'slow', runId: deferred.run_id, mapIndex: -1 }, 1, { query: { useLegacySql: false, query: 'select 1 as one' } });
      if (Date.now() > deadline) throw new Error('the task never deferred');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await hook().getJob(jobId)).status.state).toBe('RUNNING');
    const [row] = await database.rows<{ run_id: string }>(sql`select run_id from task_instances where task_id = 'slow'`);
    await changeTaskInstance(database, { dagId: 'bq_slow', runId: row.run_id, taskId: 'slow' }, TiAction.MARK_FAILED);
    const result = await running;
    expect(result.state).toBe('failed');
    for (const deadline = Date.now() + 30_000; (await hook().getJob(jobId)).status.state !== 'DONE';) {
      if (Date.now() > deadline) throw new Error('the job was never cancelled');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await hook().getJob(jobId)).status.errorResult).toMatchObject({ reason: 'stopped' });
  });
});

/** A task context by hand: enough for runInsertJob, with a deferral that throws its trigger. */
function context(over: Partial<Context> = {}): Context {
  return {
    dagId: 'reattach', taskId: 'job', runId: `manual__${Math.random().toString(36).slice(2)}`, mapIndex: -1, tryNumber: 1, previousTry: null,
    log: { info() {}, warn() {}, error() {}, debug() {} }, signal: new AbortController().signal,
    connection: async () => conn,
    ...over,
  } as unknown as Context;
}
class Deferred extends Error {
  constructor(readonly trigger: BigQueryInsertJobTrigger) { super('deferred'); }
}
const defer = (trigger: BigQueryInsertJobTrigger): never => { throw new Deferred(trigger); };
const spec = (sql: string, over: Partial<InsertJobSpec> = {}): InsertJobSpec => ({ connId: 'test_bq', configuration: { query: { query: sql } }, labels: {}, deferrable: true, cancelOnKill: true, ...over });
const deferredJob = async (p: Promise<unknown>) => {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(Deferred);
  return (err as Deferred).trigger.kwargs.jobId;
};

describe('reattach rules (the server counts jobs)', () => {
  it('the same try submitting twice gets a 409 and reattaches: one job', async () => {
    const ctx = context();
    const before = (await stats()).jobs;
    const long = spec('select 2 as two', { labels: { 'emulator-duration-ms': '5000' } });
    const first = await deferredJob(runInsertJob(ctx, long, defer));
    const second = await deferredJob(runInsertJob(ctx, long, defer));
    expect(second).toBe(first);
    expect((await stats()).jobs).toBe(before + 1);
  });

  it('a DONE job on reattach returns its result without a resubmit', async () => {
    const ctx = context();
    const s = spec('select 3 as three');
    const jobId = await deferredJob(runInsertJob(ctx, s, defer));
    for (let st = ''; st !== 'DONE'; st = (await hook().getJob(jobId)).status.state) await new Promise((r) => setTimeout(r, 50));
    const before = (await stats()).jobs;
    expect(await runInsertJob(ctx, s, defer)).toMatchObject({ jobId, statementType: 'SELECT' });
    expect((await stats()).jobs).toBe(before);
  });

  it('after a lost worker the next try reattaches to the running job, or takes a finished one\'s result; after a job failure it submits anew', async () => {
    const runId = `manual__${Math.random().toString(36).slice(2)}`;
    const zombie = { tryNumber: 1, state: 'up_for_retry', error: 'ZombieTaskError: worker w-1 stopped heartbeating for over 30s while running this task; will retry' };
    const s = spec('select 4 as four', { labels: { 'emulator-duration-ms': '1500' } });
    const firstJob = await deferredJob(runInsertJob(context({ runId }), s, defer));
    const before = (await stats()).jobs;
    expect(await deferredJob(runInsertJob(context({ runId, tryNumber: 2, previousTry: zombie }), s, defer))).toBe(firstJob);
    for (let st = ''; st !== 'DONE'; st = (await hook().getJob(firstJob)).status.state) await new Promise((r) => setTimeout(r, 50));
    expect(await runInsertJob(context({ runId, tryNumber: 2, previousTry: zombie }), s, defer)).toMatchObject({ jobId: firstJob });
    expect((await stats()).jobs).toBe(before);

    const failing = spec('select * from `shop.nothing_here`');
    const failedJob = await deferredJob(runInsertJob(context({ runId }), failing, defer));
    for (let st = ''; st !== 'DONE'; st = (await hook().getJob(failedJob)).status.state) await new Promise((r) => setTimeout(r, 50));
    const retried = await deferredJob(runInsertJob(context({ runId, tryNumber: 2, previousTry: zombie }), failing, defer));
    expect(retried).not.toBe(failedJob);
    expect(retried).toMatch(/_2_[0-9a-f]{16}$/);
    // A try after a failure that was the task's own (or a clear) never looks back.
    const cleared = await deferredJob(runInsertJob(context({ runId, tryNumber: 3, previousTry: { tryNumber: 2, state: 'success', error: null } }), s, defer));
    expect(cleared).toMatch(/_3_[0-9a-f]{16}$/);
  });

  it('async mode raises the job\'s error verbatim', async () => {
    const err = await runInsertJob(context(), spec('select * from `shop.absent`', { deferrable: false }), defer).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BigQueryJobError);
    expect((err as BigQueryJobError).errorResult).toMatchObject({ reason: 'notFound', location: 'query' });
  });
});

describe('connections test', () => {
  it('runs a dry-run query: ok against the emulator, a clear failure when the endpoint is down', async () => {
    const ok = await testBigQueryConnection(conn, new AbortController().signal);
    expect(ok).toMatchObject({ ok: true, message: expect.stringMatching(/^dry-run query accepted by http:\/\/127\.0\.0\.1:\d+ for project proj/) });
    const down = await testBigQueryConnection({ ...conn, connId: 'down', extra: { project: 'proj', api_endpoint: 'http://127.0.0.1:1', num_retries: 0 } } as Connection, new AbortController().signal);
    expect(down.ok).toBe(false);
    expect(down.message).toMatch(/ECONNREFUSED|connect/);
    const noProject = await testBigQueryConnection({ ...conn, connId: 'np', extra: { api_endpoint: emu.url } } as Connection, new AbortController().signal);
    expect(noProject).toEqual({ ok: false, message: 'connection "np" has no project; set the extra "project" (or a keyfile_dict with project_id)' });
  });

  it('reads a service-account key (its project too), masks its private key, and refuses impersonation with what to do', () => {
    const key = { type: 'service_account', project_id: 'from-key', private_key: '-----BEGIN PRIVATE KEY-----\\nabc\\n-----END PRIVATE KEY-----\\n', client_email: 'sa@from-key.iam.gserviceaccount.com' };
    const target = resolveBigQueryTarget({ ...conn, connId: 'sa', extra: { keyfile_dict: JSON.stringify(key) } } as Connection);
    expect(target).toMatchObject({ projectId: 'from-key', credentials: key, apiEndpoint: undefined });
    expect(masker.mask(`key ${key.private_key}`)).not.toContain(key.private_key);
    expect(() => resolveBigQueryTarget({ ...conn, connId: 'imp', extra: { project: 'p', impersonation_chain: 'sa@p.iam.gserviceaccount.com' } } as Connection))
      .toThrow('connection "imp": impersonation_chain is not supported by Updraft\'s BigQuery provider yet; give the service account\'s own key (keyfile_dict or key_path)');
    expect(() => resolveBigQueryTarget({ ...conn, connId: 'bad', extra: { keyfile_dict: '{not json' } } as Connection)).toThrow(/connection "bad": keyfile_dict is not JSON/);
  });
});

describe('coalesced polling', () => {
  async function submitMany(n: number, durations: (i: number) => number): Promise<BigQueryJob[]> {
    const h = hook();
    return Promise.all(Array.from({ length: n }, (_, i) => h.insertJob({ query: { query: `select ${i} as n`, useLegacySql: false } }, { labels: { 'emulator-duration-ms': String(durations(i)) } })));
  }

  it('300 jobs waited on through one poller cost one jobs.get per finished job, not one per job per poll', async () => {
    const jobs = await submitMany(300, (i) => 500 + (i % 10) * 150);
    await reset();
    const poller = new JobPoller(hook(), 'US', { capMs: 1000, mode: 'coalesced' });
    const done = await Promise.all(jobs.map((j) => poller.wait(j.jobReference.jobId, Number(j.statistics?.creationTime))));
    expect(done.every((j) => j.status.state === 'DONE' && !j.status.errorResult)).toBe(true);
    const requests = (await stats()).requests;
    expect(requests['jobs.get']).toBeGreaterThanOrEqual(300);
    expect(requests['jobs.get']).toBeLessThanOrEqual(300 + 5);
    expect(requests['jobs.list']).toBeLessThan(40);
    expect(poller.requests.get).toBe(requests['jobs.get']);
  });

  it('falls back to jobs.get per job when jobs.list is refused (403), and a 503 burst on jobs.get is retried by the client', async () => {
    const jobs = await submitMany(20, () => 300);
    await reset();
    await fault({ route: 'jobs.list', status: 403, count: 1 });
    await fault({ route: 'jobs.get', status: 503, count: 3 });
    const warnings: string[] = [];
    const poller = new JobPoller(hook(), 'US', { capMs: 500, mode: 'coalesced', log: { info() {}, debug() {}, error() {}, warn: (m: string) => warnings.push(m) } });
    const done = await Promise.all(jobs.map((j) => poller.wait(j.jobReference.jobId, Number(j.statistics?.creationTime))));
    expect(done).toHaveLength(20);
    expect(warnings.filter((w) => /jobs\.list is not permitted/.test(w))).toHaveLength(1);
    const requests = (await stats()).requests;
    expect(requests['jobs.list']).toBe(1);
    expect(requests['jobs.get']).toBeGreaterThanOrEqual(20 + 3);
  });
});
