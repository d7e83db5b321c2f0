/**
 * Pools across real processes on PostgreSQL: a 2-slot pool is never exceeded by two workers
 * over three concurrent runs (checked from the intervals tasks report); a slot held by a
 * worker killed with SIGKILL returns when the zombie is reaped, and the waiting TIs go on;
 * `updraft pools list --json` shows slots in use while tasks run.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { queries, RunState, TaskState } from '../../core/index.ts';
import { pgAvailable, waitFor } from '../helpers/pg.ts';
import { tiMap } from '../helpers/int-db.ts';
import { Cluster, fixture, maxOverlap, type Interval } from './cluster.ts';

const POOLED = ['p0_a', 'p0_b', 'p1_a', 'p1_b', 'p2_a', 'p2_b'];
const ENV = { UPDRAFT_CONFIG: fixture('conc-config/open.json'), UPDRAFT_DAGS_FOLDER: fixture('conc-pools') };

describe.skipIf(!pgAvailable)('pools across worker processes on PostgreSQL', () => {
  let cluster: Cluster;
  let gates: string;

  beforeAll(async () => {
    cluster = await Cluster.create('updraft_conc_pools');
    gates = mkdtempSync(path.join(tmpdir(), 'updraft-conc-pools-'));
  });
  afterAll(async () => {
    await cluster?.close();
    rmSync(gates, { recursive: true, force: true });
  });
  beforeEach(({ onTestFailed }) => {
    const procs = cluster.reset(ENV);
    onTestFailed(async () => { process.stderr.write(await procs.report()); });
  });
  afterEach(async () => {
    await cluster.procs.stopAll();
  });

  it('never runs more TIs of a 2-slot pool than it has slots, across 2 workers and 3 runs', async () => {
    expect(await cluster.cli(['pools', 'set', 'conc_pool', '2'])).toContain('pool conc_pool: 2 slot(s)');
    // Queued before the services start, so the scheduler's first pass starts all three at once
    // (triggered while it runs, a loaded machine could finish one run before the last is queued).
    const runs = await Promise.all([0, 1, 2].map(() => cluster.trigger('conc_pool_overlap')));
    await cluster.services(2, 4);
    for (const pk of runs) expect(await cluster.finished(pk)).toBe(RunState.SUCCESS);

    const intervals: Interval[] = [];
    for (const pk of runs) intervals.push(...await cluster.intervals(pk, POOLED));
    expect(intervals).toHaveLength(18);
    const overlap = maxOverlap(intervals);
    expect(overlap).toBeLessThanOrEqual(2);
    expect(overlap).toBe(2);
    // The three runs were all running at once: the pool, not the run queue, did the limiting.
    const runRows = await cluster.database.rows<{ start_date: Date; end_date: Date }>(
      sql`select start_date, end_date from dag_runs where id in ${runs}`);
    expect(maxOverlap(runRows.map((r) => ({ start: new Date(r.start_date).getTime(), end: new Date(r.end_date).getTime() })))).toBe(3);
  }, 240_000);

  it('wakes the other workers when a pool slot frees up, so a TI only they can run gets it', async () => {
    await queries.pools.setPool(cluster.database.db, 'conc_wake', 1, false, null);
    await Promise.all([
      cluster.services(1, 4),
      cluster.service('worker-side', ['worker', '--slots', '4'], { UPDRAFT_QUEUES: 'side' }),
    ]);
    const runPk = await cluster.trigger('conc_pool_wake');
    const ran = await waitFor(async () => {
      const r = await cluster.results(runPk, ['first', 'second']);
      return r.size ? r : null;
    }, 'one of the two pooled tasks to finish', 90_000);
    const firstDone = Math.min(...[...ran.values()].map((i) => i.end));
    // The other TI needs the freed slot and a worker of its own queue, which nothing woke up.
    const state = await waitFor(async () => {
      const s = await cluster.runState(runPk);
      return s === RunState.SUCCESS || s === RunState.FAILED ? s : null;
    }, 'the run to finish: the TI waiting on the freed pool slot never started (no worker was woken)', 30_000, 100);
    expect(state).toBe(RunState.SUCCESS);
    const intervals = [...(await cluster.results(runPk, ['first', 'second'])).values()];
    expect(maxOverlap(intervals)).toBe(1);
    expect(Math.max(...intervals.map((i) => i.start)) - firstDone).toBeLessThan(10_000);
  }, 240_000);

  it.each([
    { dagId: 'conc_pool_zombie', retried: true },
    { dagId: 'conc_pool_zombie_final', retried: false },
  ])('returns the slot of a worker killed with SIGKILL when the zombie is reaped; waiting TIs then run ($dagId)', async ({ dagId, retried }) => {
    await queries.pools.setPool(cluster.database.db, 'conc_one', 1, false, 'one at a time');
    const env = { UPDRAFT_HEARTBEAT: '500ms', UPDRAFT_ZOMBIE_THRESHOLD: '3s' };
    const { workers } = await cluster.services(2, 4, env);
    const runPk = await cluster.trigger(dagId);
    const holding = await waitFor(async () => {
      const ti = (await tiMap(cluster.database, runPk)).get('hold');
      return ti?.state === TaskState.RUNNING ? ti : null;
    }, 'hold to run', 90_000);
    const victim = workers.find((w) => w.id === holding.workerId)!;
    expect(victim, `hold runs on worker ${holding.workerId}`).toBeDefined();
    const waiting = () => cluster.database.rows<{ map_index: number; state: string }>(
      sql`select map_index, state from task_instances where run_pk = ${runPk} and task_id = 'waiter' order by map_index`);
    expect((await waiting()).map((w) => w.state)).toEqual([TaskState.SCHEDULED, TaskState.SCHEDULED, TaskState.SCHEDULED]);

    victim.proc.child.kill('SIGKILL');
    expect(await victim.proc.exited).toBe('SIGKILL');
    const killedAt = Date.now();
    expect(await cluster.finished(runPk, 60_000)).toBe(retried ? RunState.SUCCESS : RunState.FAILED);

    const survivor = workers.find((w) => w !== victim)!;
    const tis = await queries.dagRuns.runTaskInstances(cluster.database.db, runPk);
    const hold = tis.find((t) => t.taskId === 'hold')!;
    const zombieError = `ZombieTaskError: worker ${victim.id} stopped heartbeating for over 3s while running this task`;
    const history = await cluster.database.rows<{ try_number: number; state: string; error: string | null }>(
      sql`select try_number, state, error from task_instance_history where ti_id = ${hold.id} order by try_number`);
    if (retried) {
      expect(hold).toMatchObject({ state: TaskState.SUCCESS, tryNumber: 2, workerId: survivor.id });
      expect(history.map((h) => [Number(h.try_number), h.state])).toEqual([[1, TaskState.UP_FOR_RETRY], [2, TaskState.SUCCESS]]);
    } else {
      expect(hold).toMatchObject({ state: TaskState.FAILED, tryNumber: 1, error: zombieError });
      expect(history.map((h) => [Number(h.try_number), h.state])).toEqual([[1, TaskState.FAILED]]);
    }
    expect(history[0].error).toBe(zombieError);
    expect(tis.filter((t) => t.taskId === 'waiter').map((t) => [t.mapIndex, t.state, t.workerId]))
      .toEqual([0, 1, 2].map((i) => [i, TaskState.SUCCESS, survivor.id]));

    // Nothing else ran while the dead worker's lease stood; after it, one TI at a time.
    const after = [...(await cluster.results(runPk, ['hold', 'waiter'])).values()];
    expect(after).toHaveLength(retried ? 4 : 3);
    expect(Math.min(...after.map((i) => i.start))).toBeGreaterThanOrEqual(killedAt + 2000);
    expect(Math.min(...after.map((i) => i.start))).toBeLessThan(killedAt + 45_000);
    expect(maxOverlap(after)).toBe(1);
    expect((await queries.pools.listPools(cluster.database.db)).find((p) => p.name === 'conc_one')).toMatchObject({ slots: 1, used: 0 });
  }, 240_000);

  it('`updraft pools list --json` shows slots in use while tasks run', async () => {
    expect(await cluster.cli(['pools', 'set', 'conc_gate', '2', '--description', 'gated'])).toContain('pool conc_gate: 2 slot(s)');
    await cluster.services(1, 8);
    const gate = path.join(gates, 'pools-list');
    const runPk = await cluster.trigger('conc_pool_gate', ['--conf', JSON.stringify({ gate })]);
    await waitFor(async () => {
      const rows = await cluster.database.rows<{ n: number }>(
        sql`select count(*)::int as n from task_instances where run_pk = ${runPk} and state = ${TaskState.RUNNING}`);
      return Number(rows[0].n) === 2;
    }, 'two gated TIs to run', 90_000);

    type PoolRow = { name: string; slots: number; used: number; includeDeferred: boolean; description: string | null };
    const list = async () => JSON.parse(await cluster.cli(['pools', 'list', '--json'])) as PoolRow[];
    const busy = await list();
    expect(busy.find((p) => p.name === 'conc_gate')).toEqual({ name: 'conc_gate', slots: 2, used: 2, includeDeferred: false, description: 'gated' });
    expect(busy.find((p) => p.name === 'default_pool')).toMatchObject({ slots: 128, used: 0 });
    expect((await queries.dagRuns.runTaskInstances(cluster.database.db, runPk)).map((t) => t.state).sort())
      .toEqual([TaskState.RUNNING, TaskState.RUNNING, TaskState.SCHEDULED]);

    writeFileSync(gate, 'open');
    expect(await cluster.finished(runPk)).toBe(RunState.SUCCESS);
    expect((await list()).find((p) => p.name === 'conc_gate')).toMatchObject({ slots: 2, used: 0 });

    expect(await cluster.cli(['pools', 'delete', 'conc_gate'])).toContain('deleted pool conc_gate');
    expect((await list()).map((p) => p.name)).not.toContain('conc_gate');
    const missing = await cluster.procs.run(['pools', 'delete', 'conc_gate']);
    expect(missing.code).toBe(1);
    expect(missing.output).toContain('updraft: no pool "conc_gate"; see `updraft pools list`');
    const bad = await cluster.procs.run(['pools', 'set', 'x', 'two']);
    expect(bad.code).toBe(1);
    expect(bad.output).toContain('updraft: pool slots must be an integer ≥ 0, or -1 for unlimited; got "two"');
  }, 240_000);
});
