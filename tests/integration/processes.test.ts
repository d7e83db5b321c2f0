/**
 * Scheduler and worker as separate OS processes (`updraft scheduler`, `updraft worker`) on
 * one PostgreSQL database: a triggered run, two schedulers racing over catchup runs, and a
 * worker killed with SIGKILL mid-task whose TI is recovered through zombie detection (and whose
 * retry callback then runs on the other worker).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { openDatabase, queries, triggerDagRun, DagBag, RunState, TaskState, type Database } from '../../core/index.ts';
import { createTestDatabase, pgAvailable, waitFor, type TestPg } from '../helpers/pg.ts';
import { Procs, type Proc } from '../helpers/int-procs.ts';
import { count, tiMap, todayUtc, DAY } from '../helpers/int-db.ts';

const folder = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
const BASIC = folder('int-proc-basic');
const CATCHUP = folder('int-proc-catchup');
const ZOMBIE = folder('int-proc-zombie');
const READY = /updraft (scheduler|worker) (\S+):/;

describe.skipIf(!pgAvailable)('scheduler and worker processes on PostgreSQL', () => {
  let pg: TestPg;
  let database: Database;
  let procs: Procs;

  beforeAll(async () => {
    pg = await createTestDatabase('updraft_int_proc');
    database = await openDatabase({ databaseUrl: pg.url });
    await database.migrate();
  });
  afterAll(async () => {
    await procs?.stopAll();
    await database?.close();
    await pg?.drop();
  });
  beforeEach(({ onTestFailed }) => {
    procs = new Procs({ DATABASE_URL: pg.url, UPDRAFT_HEARTBEAT: '500ms', UPDRAFT_ZOMBIE_THRESHOLD: '3s' });
    onTestFailed(async () => { process.stderr.write(await procs.report()); });
  });
  afterEach(async () => {
    await procs.stopAll();
  });

  /** Start a service and return its job id once it says it is up. */
  async function service(kind: 'scheduler' | 'worker', dags: string, name: string = kind): Promise<{ proc: Proc; id: string }> {
    const proc = procs.start(name, kind === 'worker' ? ['worker', '--slots', '8'] : ['scheduler'], { UPDRAFT_DAGS_FOLDER: dags });
    const m = await procs.waitForOutput(proc, READY);
    return { proc, id: m[2] };
  }

  const runState = async (runId: string) => (await queries.dagRuns.getRun(database.db, runId))[0]?.state;

  it('runs a run triggered from the CLI with scheduler and worker in separate processes', async () => {
    const [, worker] = await Promise.all([service('scheduler', BASIC), service('worker', BASIC)]);
    const trigger = await procs.run(['dags', 'trigger', 'int_proc_basic', '--conf', '{"who":"procs"}'], { UPDRAFT_DAGS_FOLDER: BASIC });
    expect(trigger.code, trigger.output).toBe(0);
    const runId = trigger.output.match(/queued run (\S+) of int_proc_basic/)![1];
    await waitFor(async () => ['success', 'failed'].includes((await runState(runId)) ?? ''), `run ${runId} to finish`, 90_000);
    const [run] = await queries.dagRuns.getRun(database.db, runId);
    expect(run.state).toBe(RunState.SUCCESS);
    const tis = await tiMap(database, run.id);
    for (const id of ['extract', 'transform', 'load']) {
      expect(tis.get(id), id).toMatchObject({ state: TaskState.SUCCESS, tryNumber: 1, workerId: worker.id });
    }
    expect(await queries.xcom.readXCom(database.db, run.id, 'transform', 'return_value', -1)).toEqual({ who: 'procs', total: 6 });
    expect(await queries.xcom.readXCom(database.db, run.id, 'load', 'return_value', -1)).toBe('procs:6');
    const logs = await queries.logs.readLogs(database.db, tis.get('extract')!.id, 1);
    expect(logs.map((l) => l.message)).toContain('extracting for procs');
  }, 240_000);

  it('two schedulers over one database create each catchup run once and run each TI once', async () => {
    const started = await Promise.all([
      service('scheduler', CATCHUP, 'scheduler-1'), service('scheduler', CATCHUP, 'scheduler-2'),
      service('worker', CATCHUP, 'worker-1'), service('worker', CATCHUP, 'worker-2'),
    ]);
    // Manual runs on top, while the schedulers work through the backlog.
    const dag = (await DagBag.load(CATCHUP)).get('int_proc_catchup');
    const manual: string[] = [];
    for (let i = 0; i < 5; i++) {
      const last = Date.now();
      while (Date.now() === last) await new Promise((r) => setImmediate(r));
      manual.push((await triggerDagRun(database, dag, {}, `manual_${i}`)).runId);
    }
    const expected = 30 + manual.length;
    const finished = sql`select count(*) as n from dag_runs where dag_id = 'int_proc_catchup' and state = 'success'`;
    await waitFor(async () => (await count(database, finished)) >= expected, `${expected} successful runs`, 120_000, 250);
    for (const { proc } of started) expect(procs.alive(proc), `${proc.name} still running`).toBe(true);

    const runs = await database.rows<{ run_type: string; logical_date: Date | string; state: string; data_interval_start: Date | string }>(
      sql`select run_type, logical_date, state, data_interval_start from dag_runs where dag_id = 'int_proc_catchup' order by logical_date`);
    expect(runs).toHaveLength(expected);
    expect(new Set(runs.map((r) => new Date(r.logical_date).getTime())).size).toBe(expected);
    const scheduled = runs.filter((r) => r.run_type === 'scheduled').map((r) => new Date(r.logical_date).toISOString());
    const today = todayUtc().getTime();
    expect(scheduled).toEqual(Array.from({ length: 30 }, (_, i) => new Date(today - (30 - i) * DAY).toISOString()));
    expect(runs.every((r) => r.state === RunState.SUCCESS)).toBe(true);

    const tis = await database.rows<{ id: number; state: string; try_number: number }>(
      sql`select id, state, try_number from task_instances where dag_id = 'int_proc_catchup'`);
    expect(tis).toHaveLength(expected * 3);
    expect(tis.filter((t) => t.state !== TaskState.SUCCESS || Number(t.try_number) !== 1)).toEqual([]);
    const history = await database.rows<{ ti_id: number; tries: number }>(
      sql`select ti_id, count(*)::int as tries from task_instance_history where dag_id = 'int_proc_catchup' group by ti_id`);
    expect(history).toHaveLength(tis.length);
    expect(history.filter((h) => Number(h.tries) !== 1)).toEqual([]);
    expect(await count(database, sql`select count(*) as n from jobs where job_type = 'scheduler' and state = 'running'`)).toBeGreaterThanOrEqual(2);
  }, 240_000);

  it('retries a TI whose worker was killed with SIGKILL, through zombie detection', async () => {
    await service('scheduler', ZOMBIE);
    const first = await service('worker', ZOMBIE, 'worker-a');
    const dag = (await DagBag.load(ZOMBIE)).get('int_proc_zombie');
    const { runPk, runId } = await triggerDagRun(database, dag, {});
    const running = await waitFor(async () => {
      const ti = (await tiMap(database, runPk)).get('slow');
      return ti?.state === TaskState.RUNNING ? ti : null;
    }, 'the slow task to start running', 90_000);
    expect(running).toMatchObject({ tryNumber: 1, workerId: first.id });

    first.proc.child.kill('SIGKILL');
    expect(await first.proc.exited).toBe('SIGKILL');
    const second = await service('worker', ZOMBIE, 'worker-b');
    await waitFor(async () => ['success', 'failed'].includes((await runState(runId)) ?? ''), `run ${runId} to finish`, 90_000);

    expect(await runState(runId)).toBe(RunState.SUCCESS);
    const tis = await tiMap(database, runPk);
    expect(tis.get('slow')).toMatchObject({ state: TaskState.SUCCESS, tryNumber: 2, workerId: second.id, error: null });
    expect(tis.get('after')).toMatchObject({ state: TaskState.SUCCESS, tryNumber: 1 });
    expect(await queries.xcom.readXCom(database.db, runPk, 'after', 'return_value', -1)).toBe('after saw "finished on try 2"');

    const slowId = tis.get('slow')!.id;
    const history = await database.rows<{ try_number: number; state: string; worker_id: string; error: string | null }>(
      sql`select try_number, state, worker_id, error from task_instance_history where ti_id = ${slowId} order by try_number`);
    expect(history.map((h) => [Number(h.try_number), h.state, h.worker_id])).toEqual([
      [1, TaskState.UP_FOR_RETRY, first.id],
      [2, TaskState.SUCCESS, second.id],
    ]);
    expect(history[0].error).toMatch(/^ZombieTaskError: worker .* stopped heartbeating/);
    expect(history[0].error).toContain(first.id);
    const try1 = await queries.logs.readLogs(database.db, slowId, 1);
    expect(try1.some((l) => l.level === 'error' && l.message.startsWith('ZombieTaskError'))).toBe(true);
    expect((await queries.logs.readLogs(database.db, slowId, 2)).map((l) => l.message)).toContain('slow task, try 2');
    // The reaped try's retry callback ran on a worker (the scheduler queued it), into try 1's log.
    await waitFor(async () => (await queries.logs.readLogs(database.db, slowId, 1)).some((l) => l.message === 'onRetryCallback: ZombieTaskError'),
      "the zombie's retry callback in try 1's log", 60_000);
  }, 240_000);
});
