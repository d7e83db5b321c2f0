/**
 * Rolling restarts and crashes of real processes on PostgreSQL. SIGTERM to a triggerer hands
 * its triggers back at once (cleanup, never onKill); SIGTERM to a worker lets its TIs finish
 * within the grace period and gives back the rest in the same try; a scheduler killed with
 * SIGKILL halfway through a large catchup is replaced by one that finishes it, with no run
 * created twice. Health and zombie thresholds are 30 s here: a hand-over must not wait for them.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { openDatabase } from '../../core/index.ts';
import { createTestDatabase, pgAvailable, waitFor, type TestPg } from '../helpers/pg.ts';
import { Procs, type Proc } from '../helpers/int-procs.ts';
import { READY, auditProblems, auditRun, baselineMs, faultEnv, lostAndTwice, recordFault, type FaultSizes } from '../helpers/faults.ts';

const TIMING = { UPDRAFT_HEARTBEAT: '1s', UPDRAFT_ZOMBIE_THRESHOLD: '30s', UPDRAFT_TRIGGERER_HEALTH_THRESHOLD: '30s' };
const CATCHUP = fileURLToPath(new URL('../fixtures/faults-catchup', import.meta.url));

describe.skipIf(!pgAvailable)('fault: graceful hand-over and crashes', () => {
  let pg: TestPg;
  let procs: Procs;
  let sql: postgres.Sql;

  beforeEach(async ({ onTestFailed }) => {
    pg = await createTestDatabase('updraft_handover');
    const database = await openDatabase({ databaseUrl: pg.url });
    await database.migrate();
    await database.close();
    sql = postgres(pg.url, { max: 1, onnotice: () => {} });
    onTestFailed(async () => { process.stderr.write(await procs.report()); });
  });
  afterEach(async () => {
    await procs?.stopAll();
    await sql.end({ timeout: 1 });
    await pg.drop();
  });

  async function service(name: string, args: string[], env: Record<string, string> = {}): Promise<{ proc: Proc; id: string }> {
    const proc = procs.start(name, args, env);
    return { proc, id: (await procs.waitForOutput(proc, READY, 90_000))[2] };
  }

  const n = async (query: Promise<{ n: number }[]>) => (await query)[0].n;
  const finished = (runId: string) => waitFor(async () => ['success', 'failed'].includes((await auditRun(pg.url, runId)).runState ?? ''), 'the run to finish', 120_000, 250);

  it('SIGTERM to a triggerer hands every trigger to the other at once, with cleanup() and no onKill()', async () => {
    const sizes: FaultSizes = { items: 30, itemMs: 50, waitMs: 7000, spreadMs: 10 };
    procs = new Procs(faultEnv(pg.url, sizes, TIMING));
    const [, , a] = await Promise.all([service('scheduler', ['scheduler']), service('worker', ['worker', '--slots', '16']), service('triggerer-a', ['triggerer'])]);
    const runId = 'sigterm_triggerer';
    expect((await procs.run(['dags', 'trigger', 'faults', '--run-id', runId])).code).toBe(0);
    await waitFor(async () => (await n(sql`select count(*)::int as n from triggers where triggerer_id = ${a.id}`)) === sizes.items, 'A to hold every trigger', 90_000);
    const b = await service('triggerer-b', ['triggerer']);

    a.proc.child.kill('SIGTERM');
    const sent = Date.now();
    await waitFor(async () => (await n(sql`select count(*)::int as n from triggers where triggerer_id = ${b.id}`)) === sizes.items, 'B to hold every trigger', 30_000, 20);
    const takeoverMs = Date.now() - sent;
    expect(await a.proc.exited).toBe(0);
    const out = a.proc.output();
    expect(out.match(/probe cleanup /g)?.length).toBe(sizes.items);
    expect(out).not.toMatch(/probe onKill/);

    await finished(runId);
    const audit = await auditRun(pg.url, runId);
    expect(auditProblems(audit, sizes)).toEqual([]);
    process.stdout.write(`triggerer SIGTERM: ${sizes.items} triggers taken over in ${takeoverMs} ms\n`);
    recordFault('triggerer_sigterm', {
      triggers: sizes.items, takeoverMs, runMs: audit.durationMs,
      baselineRunMs: await baselineMs((args) => procs.run(args), pg.url, 'sigterm_triggerer_baseline'), ...lostAndTwice(audit, sizes),
    });
    expect(takeoverMs).toBeLessThan(15_000);
  }, 300_000);

  it('SIGTERM to a worker: TIs that outlast the grace period go back and finish elsewhere in the same try', async () => {
    const sizes: FaultSizes = { items: 8, itemMs: 8000, waitMs: 500 };
    procs = new Procs(faultEnv(pg.url, sizes, TIMING));
    await Promise.all([service('scheduler', ['scheduler']), service('triggerer', ['triggerer'])]);
    const w1 = await service('worker-1', ['worker', '--slots', '8', '--grace', '1s']);
    const runId = 'sigterm_worker';
    expect((await procs.run(['dags', 'trigger', 'faults', '--run-id', runId])).code).toBe(0);
    await waitFor(async () => (await n(sql`select count(*)::int as n from task_instances where worker_id = ${w1.id} and task_id = 'work' and state = 'running'`)) === sizes.items,
      'worker 1 to run every work TI', 90_000);
    const w2 = await service('worker-2', ['worker', '--slots', '8']);

    w1.proc.child.kill('SIGTERM');
    const sent = Date.now();
    await waitFor(async () => (await n(sql`select count(*)::int as n from task_instances where worker_id = ${w2.id} and task_id = 'work' and state = 'running'`)) === sizes.items,
      'worker 2 to run the handed-back TIs', 30_000, 20);
    const takeoverMs = Date.now() - sent;
    expect(await w1.proc.exited).toBe(0);
    expect(w1.proc.output()).toMatch(/handed back 8 TI\(s\) still running after the grace period/);

    await finished(runId);
    // Every TI, the handed-back ones included, succeeded in try 1: the hand-back cost no try.
    const audit = await auditRun(pg.url, runId);
    expect(auditProblems(audit, sizes)).toEqual([]);
    process.stdout.write(`worker SIGTERM (grace 1 s): ${sizes.items} TIs running on the other worker ${takeoverMs} ms later\n`);
    recordFault('worker_sigterm', {
      graceMs: 1000, tisHandedBack: sizes.items, takeoverMs, runMs: audit.durationMs,
      baselineRunMs: await baselineMs((args) => procs.run(args), pg.url, 'sigterm_worker_baseline'), ...lostAndTwice(audit, sizes),
    });
    expect(takeoverMs).toBeLessThan(15_000);
  }, 300_000);

  it('SIGTERM to a worker: TIs that finish within the grace period are recorded by it', async () => {
    const sizes: FaultSizes = { items: 8, itemMs: 2000, waitMs: 500 };
    procs = new Procs(faultEnv(pg.url, sizes, TIMING));
    await Promise.all([service('scheduler', ['scheduler']), service('triggerer', ['triggerer'])]);
    const w1 = await service('worker-1', ['worker', '--slots', '8', '--grace', '60s']);
    const runId = 'sigterm_worker_grace';
    expect((await procs.run(['dags', 'trigger', 'faults', '--run-id', runId])).code).toBe(0);
    await waitFor(async () => (await n(sql`select count(*)::int as n from task_instances where worker_id = ${w1.id} and task_id = 'work' and state = 'running'`)) === sizes.items,
      'worker 1 to run every work TI', 90_000);
    w1.proc.child.kill('SIGTERM');
    expect(await w1.proc.exited).toBe(0);
    expect(w1.proc.output()).not.toMatch(/handed back/);
    expect(await n(sql`select count(*)::int as n from task_instances where task_id = 'work' and state = 'success' and try_number = 1`)).toBe(sizes.items);
    await service('worker-2', ['worker', '--slots', '8']);
    await finished(runId);
    expect(auditProblems(await auditRun(pg.url, runId), sizes)).toEqual([]);
  }, 300_000);

  it('a scheduler killed with SIGKILL during a large catchup is replaced by one that finishes it, no run created twice', async () => {
    procs = new Procs({ DATABASE_URL: pg.url, UPDRAFT_DAGS_FOLDER: CATCHUP, ...TIMING });
    const first = await service('scheduler-1', ['scheduler']);
    await waitFor(async () => (await n(sql`select count(*)::int as n from dag_runs`)) >= 300, 'the catchup to be under way', 90_000, 20);
    first.proc.child.kill('SIGKILL');
    expect(await first.proc.exited).toBe('SIGKILL');
    const atKill = await n(sql`select count(*)::int as n from dag_runs`);

    const restarted = Date.now();
    await service('scheduler-2', ['scheduler']);
    const expected = () => {
      const DAY = 86_400_000;
      const start = Math.floor(Date.now() / DAY) * DAY - 10 * DAY;
      return Math.floor((Date.now() - start) / 300_000);
    };
    await waitFor(async () => (await n(sql`select count(*)::int as n from dag_runs`)) >= expected(), 'the catchup to complete', 120_000, 100);
    const [row] = await sql`select count(*)::int as runs, count(distinct logical_date)::int as dates, count(distinct run_id)::int as ids,
      min(logical_date) as first, max(logical_date) as last from dag_runs`;
    expect(atKill, 'the kill happened halfway through the catchup').toBeLessThan(row.runs);
    expect(row.dates).toBe(row.runs);
    expect(row.ids).toBe(row.runs);
    // Contiguous five-minute intervals from the start date: none missing, none doubled.
    expect((row.last.getTime() - row.first.getTime()) / 300_000 + 1).toBe(row.runs);
    expect(row.runs).toBeGreaterThanOrEqual(expected() - 1);
    recordFault('scheduler_sigkill_catchup', {
      runsAtKill: atKill, runs: row.runs, runsCreatedTwice: row.runs - row.dates, catchupFinishedAfterRestartMs: Date.now() - restarted,
    });
  }, 300_000);
});
