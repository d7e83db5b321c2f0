/**
 * BigQuery jobs across process failures, with real processes on PostgreSQL and the emulator
 * (one for the file) counting the jobs it was sent:
 * - a worker SIGKILLed while it awaits its job: the zombie retry reattaches, one job in all;
 * - a triggerer replaced while a deferred job runs: the job is not cancelled, and the task
 *   resumes once it is done;
 * - the same kill for a dbt model's job: its retry reattaches (the compiled SQL, from XCom, is
 *   the same, so the job id is).
 */
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../../core/index.ts';
import { startEmulator, type Emulator } from '../../../providers/bigquery/index.ts';
import { createTestDatabase, pgAvailable, waitFor, type TestPg } from '../../helpers/pg.ts';
import { Procs } from '../../helpers/int-procs.ts';
import { READY } from '../../helpers/faults.ts';

const DAGS = fileURLToPath(new URL('../../fixtures/bigquery-procs', import.meta.url));
const required = process.env.CI === 'true';

let emu: Emulator;
let pg: TestPg;

beforeAll(async () => {
  if (!pgAvailable) {
    if (required) throw new Error('PostgreSQL is required in CI');
    return;
  }
  emu = await startEmulator({ jobDurationMs: 0 });
  pg = await createTestDatabase('updraft_bq_procs');
  const database = await openDatabase({ databaseUrl: pg.url });
  await database.migrate();
  await database.close();
}, 120_000);
afterAll(async () => {
  await emu?.close();
  await pg?.drop();
});

/** The emulator's jobs whose id starts with `prefix`, with their status. */
async function jobsOf(prefix: string): Promise<{ id: string; state: string; error?: string }[]> {
  const page = await (await fetch(`${emu.url}/bigquery/v2/projects/proj/jobs?projection=full&maxResults=1000`)).json() as { jobs?: { jobReference: { jobId: string }; status: { state: string; errorResult?: { reason: string } } }[] };
  return (page.jobs ?? []).filter((j) => j.jobReference.jobId.startsWith(prefix)).map((j) => ({ id: j.jobReference.jobId, state: j.status.state, error: j.status.errorResult?.reason }));
}

describe.skipIf(!pgAvailable && !required)('BigQuery jobs across process failures', () => {
  const env = () => ({
    DATABASE_URL: pg.url, UPDRAFT_DAGS_FOLDER: DAGS, UPDRAFT_HEARTBEAT: '500ms', UPDRAFT_ZOMBIE_THRESHOLD: '3s', UPDRAFT_TRIGGERER_HEALTH_THRESHOLD: '3s',
    UPDRAFT_CONN_TEST_BQ: JSON.stringify({ conn_type: 'google_cloud_platform', extra: { project: 'proj', location: 'US', api_endpoint: emu.url } }),
  });
  type Start = (name: string, args: string[]) => Promise<ReturnType<Procs['start']>>;
  /** Services as processes for one test; on failure their logs and the database's state are printed. */
  async function session(onTestFailed: (fn: () => Promise<void>) => void, body: (procs: Procs, sql: postgres.Sql, start: Start) => Promise<void>): Promise<void> {
    const procs = new Procs(env());
    onTestFailed(async () => { process.stderr.write(await procs.report()); });
    const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
    const start: Start = (name, args) => { const p = procs.start(name, args); return procs.waitForOutput(p, READY, 90_000).then(() => p); };
    try {
      await body(procs, sql, start);
    } finally {
      await procs.stopAll();
      await sql.end({ timeout: 1 });
    }
  }
  const runState = async (sql: postgres.Sql, runId: string) => {
    const [r] = await sql<{ state: string }[]>`select state from dag_runs where run_id = ${runId}`;
    return ['success', 'failed'].includes(r?.state ?? '') ? r.state : null;
  };

  /** Start a run, SIGKILL its worker while `taskId`'s job runs, let a second worker finish; the TI's tries and the server's jobs. */
  async function killMidJob(procs: Procs, sql: postgres.Sql, start: Start, dagId: string, runId: string, taskId: string) {
    const prefix = `updraft_${dagId}_${taskId}_${runId}_`;
    await start('scheduler', ['scheduler']);
    const first = await start('worker-1', ['worker', '--slots', '4']);
    expect((await procs.run(['dags', 'trigger', dagId, '--run-id', runId])).code).toBe(0);
    await waitFor(async () => (await jobsOf(prefix)).some((j) => j.state === 'RUNNING'), 'the job to run', 60_000);
    first.child.kill('SIGKILL');
    await first.exited;
    await start('worker-2', ['worker', '--slots', '4']);
    expect(await waitFor(() => runState(sql, runId), 'the run to finish', 120_000, 250)).toBe('success');
    const [ti] = await sql<{ try_number: number }[]>`select try_number from task_instances where task_id = ${taskId} and run_pk = (select id from dag_runs where run_id = ${runId})`;
    return { tries: ti.try_number, jobs: await jobsOf(prefix) };
  }

  it('kill -9 of the worker awaiting its job: the zombie retry reattaches, and the server saw one job', ({ onTestFailed }) => session(onTestFailed, async (procs, sql, start) => {
    const { tries, jobs } = await killMidJob(procs, sql, start, 'bq_kill', 'kill', 'job');
    expect(tries).toBe(2);
    expect(jobs).toEqual([{ id: expect.stringMatching(/_-1_1_[0-9a-f]{16}$/), state: 'DONE', error: undefined }]);
  }), 300_000);

  it('kill -9 of the worker awaiting a dbt model\'s job: the retry reattaches to the same job', ({ onTestFailed }) => session(onTestFailed, async (procs, sql, start) => {
    const { tries, jobs } = await killMidJob(procs, sql, start, 'dbt_kill', 'dbtkill', 'slow');
    expect(tries).toBe(2);
    expect(jobs).toEqual([{ id: expect.stringMatching(/_-1_1_[0-9a-f]{16}$/), state: 'DONE', error: undefined }]);
  }), 300_000);

  it('a triggerer replaced while its deferred job runs does not cancel the job; the task resumes when it is done', ({ onTestFailed }) => session(onTestFailed, async (procs, sql, start) => {
      await start('scheduler', ['scheduler']);
      await start('worker', ['worker', '--slots', '4']);
      const first = await start('triggerer-1', ['triggerer']);
      expect((await procs.run(['dags', 'trigger', 'bq_takeover', '--run-id', 'takeover'])).code).toBe(0);
      await waitFor(async () => {
        const [t] = await sql<{ n: number }[]>`select count(*)::int as n from triggers where triggerer_id is not null`;
        return t.n === 1;
      }, 'the trigger to be claimed', 60_000);
      first.child.kill('SIGKILL');
      await first.exited;
      await start('triggerer-2', ['triggerer']);
      expect(await waitFor(() => runState(sql, 'takeover'), 'the run to finish', 120_000, 250)).toBe('success');
      const jobs = await jobsOf('updraft_bq_takeover_job_takeover_');
      expect(jobs).toEqual([{ id: expect.any(String), state: 'DONE', error: undefined }]);
  }), 300_000);
});
