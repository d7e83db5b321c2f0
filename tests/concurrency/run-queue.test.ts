/**
 * The run queue across real processes on PostgreSQL, runs triggered with `updraft dags
 * trigger --priority/--tag`: with UPDRAFT_MAX_CONCURRENT_RUNS=1 held runs start one at a
 * time by priority, then FIFO; with a run tag limit, a blocked run at the head of the queue
 * does not hold back the runs behind it. Start order is read from dag_runs.start_date.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { RunState } from '../../core/index.ts';
import { pgAvailable, waitFor } from '../helpers/pg.ts';
import { Cluster, fixture, maxOverlap } from './cluster.ts';

const DAGS = fixture('conc-queue');

describe.skipIf(!pgAvailable)('the run queue on PostgreSQL', () => {
  let cluster: Cluster;
  let gates: string;

  beforeAll(async () => {
    cluster = await Cluster.create('updraft_conc_queue');
    gates = mkdtempSync(path.join(tmpdir(), 'updraft-conc-queue-'));
  });
  afterAll(async () => {
    await cluster?.close();
    rmSync(gates, { recursive: true, force: true });
  });
  beforeEach(async ({ onTestFailed }) => {
    await cluster.database.db.execute(sql`delete from dag_runs`);
    const procs = cluster.reset({ UPDRAFT_DAGS_FOLDER: DAGS });
    onTestFailed(async () => { process.stderr.write(await procs.report()); });
  });
  afterEach(async () => {
    await cluster.procs.stopAll();
  });

  type RunRow = { id: number; run_id: string; state: string; start_date: Date | null; end_date: Date | null };
  const runRows = () => cluster.database.rows<RunRow>(sql`select id, run_id, state, start_date, end_date from dag_runs order by id`);
  const byRunId = async () => new Map((await runRows()).map((r) => [r.run_id, r]));
  const ms = (d: Date | null) => (d === null ? NaN : new Date(d).getTime());
  const gateConf = (name: string) => ['--conf', JSON.stringify({ gate: path.join(gates, name) })];
  const open = (name: string) => writeFileSync(path.join(gates, name), 'open');
  const runningOnly = async (runIds: string[]) => waitFor(async () => {
    const rows = await runRows();
    return rows.filter((r) => r.state === RunState.RUNNING).map((r) => r.run_id).sort().join() === [...runIds].sort().join();
  }, `exactly ${runIds.join(', ')} to be running`, 90_000);
  const allFinished = (n: number) => waitFor(async () => {
    const rows = await runRows();
    return rows.length === n && rows.every((r) => r.state === RunState.SUCCESS) ? rows : null;
  }, `${n} successful runs`, 120_000, 100);

  it('starts held runs one at a time by priority, then first in first out (UPDRAFT_MAX_CONCURRENT_RUNS=1)', async () => {
    const env = { UPDRAFT_CONFIG: fixture('conc-config/open.json'), UPDRAFT_MAX_CONCURRENT_RUNS: '1' };
    await cluster.services(1, 8, env);
    await cluster.trigger('conc_queue_a', ['--run-id', 'blocker', ...gateConf('one')]);
    await runningOnly(['blocker']);
    for (const [runId, priority] of [['p1', 1], ['p5_first', 5], ['p3', 3], ['p5_second', 5], ['p0', 0]] as const) {
      await cluster.trigger(runId === 'p3' ? 'conc_queue_b' : 'conc_queue_a', ['--run-id', runId, '--priority', String(priority)]);
    }
    const queued = await runRows();
    expect(queued.filter((r) => r.run_id !== 'blocker').map((r) => r.state)).toEqual(Array(5).fill(RunState.QUEUED));

    open('one');
    const rows = await allFinished(6);
    const order = [...rows].sort((a, b) => ms(a.start_date) - ms(b.start_date)).map((r) => r.run_id);
    expect(order).toEqual(['blocker', 'p5_first', 'p5_second', 'p3', 'p1', 'p0']);
    // One run at a time: the runs' tasks never overlapped.
    const intervals = [];
    for (const r of rows) intervals.push(...(await cluster.results(r.id, ['step'])).values());
    expect(intervals).toHaveLength(6);
    expect(maxOverlap(intervals)).toBe(1);
  }, 240_000);

  it('skips a run blocked by a run tag limit; the runs behind it start, and it starts once the tag frees', async () => {
    // maxConcurrentRuns 2 and { key: 'lane', value: 'batch', limit: 1 }.
    const env = { UPDRAFT_CONFIG: fixture('conc-config/lane.json') };
    await cluster.services(1, 8, env);
    await cluster.trigger('conc_queue_b', ['--run-id', 'batch_running', '--tag', 'lane=batch', ...gateConf('lane')]);
    await cluster.trigger('conc_queue_a', ['--run-id', 'filler', ...gateConf('filler')]);
    await runningOnly(['batch_running', 'filler']);
    await cluster.trigger('conc_queue_b', ['--run-id', 'batch_blocked', '--tag', 'lane=batch', '--priority', '10']);
    await cluster.trigger('conc_queue_a', ['--run-id', 'next', '--priority', '5']);
    await cluster.trigger('conc_queue_a', ['--run-id', 'last', '--priority', '1']);
    const tags = await cluster.database.rows<{ run_id: string; tags: Record<string, string>; priority: number }>(
      sql`select run_id, tags, priority from dag_runs where run_id = 'batch_blocked'`);
    expect(tags[0]).toMatchObject({ tags: { lane: 'batch' }, priority: 10 });

    // The global limit frees a place: the highest-priority run is blocked by its tag, so the next one goes.
    open('filler');
    await waitFor(async () => (await byRunId()).get('last')?.state === RunState.SUCCESS, 'the runs behind the blocked one to finish', 120_000);
    let runs = await byRunId();
    expect(runs.get('batch_blocked')!.state).toBe(RunState.QUEUED);
    expect(runs.get('batch_running')!.state).toBe(RunState.RUNNING);
    expect(runs.get('next')!.state).toBe(RunState.SUCCESS);
    expect(ms(runs.get('next')!.start_date)).toBeLessThan(ms(runs.get('last')!.start_date));

    open('lane');
    await allFinished(5);
    runs = await byRunId();
    const step = async (runId: string) => [...(await cluster.results(runs.get(runId)!.id, ['step'])).values()][0];
    expect((await step('batch_blocked')).start).toBeGreaterThanOrEqual((await step('batch_running')).end);
    // The runs behind the blocked one ran while the tag was still taken.
    expect((await step('last')).end).toBeLessThan((await step('batch_running')).end);
    expect(ms(runs.get('batch_blocked')!.start_date)).toBeGreaterThan(ms(runs.get('last')!.start_date));
  }, 240_000);
});
