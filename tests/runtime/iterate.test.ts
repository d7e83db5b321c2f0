/**
 * iterate(): every item inside one TI. In-process on PGlite (results in order, the concurrency
 * limit, per-item retries, aggregated and tolerated failures, sync callables, live progress,
 * a TI retry resuming from checkpoints, executionTimeout), and on PostgreSQL with real
 * processes: a worker killed with SIGKILL mid-iterate, whose retry skips checkpointed items.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { openDatabase, queries, triggerDagRun, DagBag, RunState, TaskState, type Database } from '../../core/index.ts';
import { runDagLocally } from '../../cli/local-run.ts';
import { createTestDatabase, pgAvailable, waitFor, type TestPg } from '../helpers/pg.ts';
import { Procs, type Proc } from '../helpers/int-procs.ts';

const folder = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
type RunStats = { inFlight: number; maxInFlight: number; calls: Record<number, number> };
const stats = (runId: string): RunStats => (globalThis as { __updraftIterateTest?: Record<string, RunStats> }).__updraftIterateTest?.[runId]
  ?? { inFlight: 0, maxInFlight: 0, calls: {} };

type ItemRow = { item_index: number; state: string; attempts: number; error: string | null };
const itemRows = (database: Database, tiId: number) => database.rows<ItemRow>(
  sql`select item_index, state, attempts, error from iterate_items where ti_id = ${tiId} order by item_index`);
/** A successful TI's last checkpoint rows are written after it ends, so wait for all of them. */
const allItemRows = (database: Database, tiId: number, n: number) =>
  waitFor(async () => { const rows = await itemRows(database, tiId); return rows.length === n ? rows : null; }, `${n} checkpoint rows of TI ${tiId}`, 10_000, 20);
const progressOf = async (database: Database, tiId: number) =>
  (await database.rows<{ progress: unknown }>(sql`select progress from task_instances where id = ${tiId}`))[0]?.progress;

describe('iterate() in-process on PGlite', () => {
  let database: Database;
  let bag: DagBag;

  beforeAll(async () => {
    database = await openDatabase({ dataDir: 'memory://' });
    await database.migrate();
    bag = await DagBag.load(folder('iterate-core'));
    expect([...bag.errors]).toEqual([]);
  });
  afterAll(async () => {
    await database?.close();
  });

  async function run(dagId: string) {
    const res = await runDagLocally(database, bag, bag.get(dagId), {});
    const [r] = await queries.dagRuns.getRun(database.db, res.runId, dagId);
    const ti = (taskId: string) => res.taskInstances.find((t) => t.taskId === taskId)!;
    const value = (taskId: string) => queries.xcom.readXCom(database.db, r.id, taskId, 'return_value', -1);
    const logs = async (taskId: string, tryNumber = 1) => (await queries.logs.readLogs(database.db, ti(taskId).id, tryNumber)).map((l) => l.message);
    return { ...res, runPk: r.id, ti, value, logs };
  }

  it('runs every item in one TI with partial inputs, in item order, within the concurrency limit', async () => {
    const res = await run('it_basic');
    expect(res.state).toBe(RunState.SUCCESS);
    expect(res.taskInstances.filter((t) => t.taskId === 'scale')).toHaveLength(1);
    expect(await res.value('scale')).toEqual(Array.from({ length: 40 }, (_, i) => i * 3));
    expect(await res.value('total')).toEqual({ sum: 2340, first: [0, 3, 6] });
    const s = stats(res.runId);
    expect(s.maxInFlight).toBeLessThanOrEqual(4);
    expect(s.maxInFlight).toBeGreaterThanOrEqual(2);
    expect(Object.values(s.calls)).toEqual(Array(40).fill(1));
    const rows = await allItemRows(database, res.ti('scale').id, 40);
    expect(rows.map((r) => [r.item_index, r.state])).toEqual(Array.from({ length: 40 }, (_, i) => [i, 'success']));
    expect(await progressOf(database, res.ti('scale').id)).toEqual({ done: 40, failed: 0, total: 40 });
    const logs = await res.logs('scale');
    expect(logs[0]).toBe('iterating over 40 items, 4 at a time on the event loop');
    expect(logs.at(-1)).toMatch(/^finished 40 items in [\d.]+s: 40 succeeded, 0 failed$/);
  });

  it('retries a failing item on its own, with backoff, until it succeeds', async () => {
    const res = await run('it_retry');
    expect(res.state).toBe(RunState.SUCCESS);
    expect(await res.value('flaky')).toEqual(Array.from({ length: 12 }, (_, i) => `ok ${i}`));
    const calls = stats(res.runId).calls;
    for (let i = 0; i < 12; i++) expect(calls[i], `item ${i}`).toBe(i % 5 === 0 ? 3 : 1);
    const rows = await allItemRows(database, res.ti('flaky').id, 12);
    expect(rows.filter((r) => r.attempts === 3).map((r) => r.item_index)).toEqual([0, 5, 10]);
    expect((await res.logs('flaky')).at(-1)).toMatch(/12 succeeded, 0 failed; 6 item retries$/);
  });

  it('fails the TI with one error naming how many items failed and the first of them', async () => {
    const res = await run('it_fail');
    expect(res.state).toBe(RunState.FAILED);
    expect(res.ti('boom')).toMatchObject({ state: TaskState.FAILED, tryNumber: 1 });
    expect(res.ti('boom').error).toBe('IterateItemsError: 3 of 10 items failed: #2 Error: boom 2; #5 Error: boom 5; #7 Error: boom 7');
    const rows = await itemRows(database, res.ti('boom').id);
    expect(rows.filter((r) => r.state === 'failed').map((r) => [r.item_index, r.attempts, r.error])).toEqual([
      [2, 2, 'Error: boom 2'], [5, 2, 'Error: boom 5'], [7, 2, 'Error: boom 7'],
    ]);
    expect(rows.filter((r) => r.state === 'success')).toHaveLength(7);
    expect(await progressOf(database, res.ti('boom').id)).toEqual({ done: 7, failed: 3, total: 10 });
  });

  it('returns { results, failures } with tolerateFailures', async () => {
    const res = await run('it_tolerate');
    expect(res.state).toBe(RunState.SUCCESS);
    expect(await res.value('boom')).toEqual({
      results: [0, 1, null, 3, 4, null, 6, null, 8, 9],
      failures: [{ index: 2, error: 'Error: boom 2' }, { index: 5, error: 'Error: boom 5' }, { index: 7, error: 'Error: boom 7' }],
    });
  });

  it('runs a sync callable item by item in worker threads, over the product of two lists', async () => {
    const res = await run('it_sync');
    expect(res.state).toBe(RunState.SUCCESS);
    const ids = (await res.value('label') as { id: string }[]).map((r) => r.id);
    expect(ids).toEqual(['a1', 'a2', 'a3', 'a4', 'b1', 'b2', 'b3', 'b4', 'c1', 'c2', 'c3', 'c4']);
    const logs = await res.logs('label');
    expect(logs[0]).toBe('iterating over 12 items, 3 at a time in worker threads');
    expect(logs).toContain('labelled b3');
  });

  it('shows live progress in task_instances.progress while items run', async () => {
    const done = runDagLocally(database, bag, bag.get('it_progress'), {});
    const seen = await waitFor(async () => {
      const [row] = await database.rows<{ progress: { done: number; total: number } | null; state: string }>(
        sql`select progress, state from task_instances where dag_id = 'it_progress' and task_id = 'slow'`);
      return row?.state === TaskState.RUNNING && row.progress && row.progress.done > 0 && row.progress.done < 60 ? row.progress : null;
    }, 'partial progress of it_progress', 30_000, 20);
    expect(seen).toMatchObject({ total: 60, failed: 0 });
    const res = await done;
    expect(res.state).toBe(RunState.SUCCESS);
    expect(await progressOf(database, res.taskInstances[0].id)).toEqual({ done: 60, failed: 0, total: 60 });
  });

  it('keeps finished items pending while checkpoint writes fail, and writes them once the database accepts them', async () => {
    // A statement trigger makes every checkpoint write fail until the flag is lowered.
    await database.db.execute(sql`create table it_block (blocked boolean not null)`);
    await database.db.execute(sql`insert into it_block values (true)`);
    await database.db.execute(sql`create function it_block_fn() returns trigger language plpgsql as $$
      begin if (select blocked from it_block) then raise exception 'checkpoints blocked by the test'; end if; return null; end $$`);
    await database.db.execute(sql`create trigger it_block_tr before insert on iterate_items for each statement execute function it_block_fn()`);
    try {
      const done = runDagLocally(database, bag, bag.get('it_progress'), {});
      await waitFor(async () => {
        const [row] = await database.rows<{ started: boolean }>(sql`select start_date < now() - interval '300 milliseconds' as started
          from task_instances where dag_id = 'it_progress' and task_id = 'slow' and state = 'running'`);
        return row?.started;
      }, 'the iterate TI to run for a while', 30_000, 20);
      await database.db.execute(sql`update it_block set blocked = false`);
      const res = await done;
      expect(res.state).toBe(RunState.SUCCESS);
      const tiId = res.taskInstances[0].id;
      expect((await allItemRows(database, tiId, 60)).filter((r) => r.state === 'success')).toHaveLength(60);
      const logs = (await queries.logs.readLogs(database.db, tiId, 1)).map((l) => l.message);
      expect(logs.filter((l) => l.startsWith('checkpoint of '))).toHaveLength(1);
      expect(logs.find((l) => l.startsWith('checkpoint of '))).toMatch(/^checkpoint of \d+ item\(s\) failed, will retry: .*checkpoints blocked by the test/);
      expect(logs.some((l) => /^checkpoints are being written again after \d+ failed attempt\(s\)$/.test(l))).toBe(true);
    } finally {
      await database.db.execute(sql`drop trigger it_block_tr on iterate_items`);
      await database.db.execute(sql`drop function it_block_fn`);
      await database.db.execute(sql`drop table it_block`);
    }
  });

  it('re-runs only the failed items when the TI retries', async () => {
    const res = await run('it_resume');
    expect(res.state).toBe(RunState.SUCCESS);
    expect(res.ti('once')).toMatchObject({ state: TaskState.SUCCESS, tryNumber: 2 });
    expect(await res.value('once')).toEqual(Array.from({ length: 20 }, (_, i) => i * 10));
    const calls = stats(res.runId).calls;
    for (let i = 0; i < 20; i++) expect(calls[i], `item ${i}`).toBe(i % 4 === 3 ? 2 : 1);
    const [hist] = await database.rows<{ error: string }>(
      sql`select error from task_instance_history where ti_id = ${res.ti('once').id} and try_number = 1`);
    expect(hist.error).toBe('IterateItemsError: 5 of 20 items failed: #3 Error: not yet 3; #7 Error: not yet 7; #11 Error: not yet 11; #15 Error: not yet 15; #19 Error: not yet 19');
    expect((await res.logs('once', 2))[0]).toBe('resuming: 15 of 20 items already done; retrying 5 that failed before; 3 at a time on the event loop');
    expect((await res.logs('once', 2)).at(-1)).toMatch(/^finished 20 items in [\d.]+s: 20 succeeded, 0 failed, 15 of them in earlier tries$/);
  });

  it('stops starting items once executionTimeout aborts the TI', async () => {
    const res = await run('it_timeout');
    expect(res.state).toBe(RunState.FAILED);
    expect(res.ti('long').error).toMatch(/^TaskTimeoutError: .*exceeded its executionTimeout of 300 ms/);
    const started = Object.keys(stats(res.runId).calls).length;
    expect(started).toBeGreaterThan(0);
    expect(started).toBeLessThan(60);
    await new Promise((r) => setTimeout(r, 300));
    expect(Object.keys(stats(res.runId).calls).length).toBe(started);
  });

  it('lets DAG code cap a resource with semaphore() inside the items', async () => {
    const res = await run('it_gated');
    expect(res.state).toBe(RunState.SUCCESS);
    expect(await res.value('gated')).toEqual(Array.from({ length: 16 }, (_, i) => i));
    expect(stats(res.runId).maxInFlight).toBe(2);
  });
});

describe.skipIf(!pgAvailable)('iterate() across a worker crash on PostgreSQL', () => {
  const DAGS = folder('iterate-procs');
  const READY = /updraft (scheduler|worker) (\S+):/;
  let pg: TestPg;
  let database: Database;
  let procs: Procs;
  let dir: string;

  beforeAll(async () => {
    pg = await createTestDatabase('updraft_iterate');
    database = await openDatabase({ databaseUrl: pg.url });
    await database.migrate();
    dir = mkdtempSync(path.join(tmpdir(), 'updraft-iterate-'));
  });
  afterAll(async () => {
    await procs?.stopAll();
    await database?.close();
    await pg?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(({ onTestFailed }) => {
    procs = new Procs({ DATABASE_URL: pg.url, UPDRAFT_HEARTBEAT: '500ms', UPDRAFT_ZOMBIE_THRESHOLD: '3s', UPDRAFT_DAGS_FOLDER: DAGS });
    onTestFailed(async () => { process.stderr.write(await procs.report()); });
  });
  afterEach(async () => {
    await procs.stopAll();
  });

  async function service(kind: 'scheduler' | 'worker', name: string, env: Record<string, string> = {}): Promise<{ proc: Proc; id: string }> {
    const proc = procs.start(name, kind === 'worker' ? ['worker', '--slots', '4'] : ['scheduler'], env);
    return { proc, id: (await procs.waitForOutput(proc, READY))[2] };
  }

  it('resumes from checkpoints after kill -9: items checkpointed before the kill are not called again', async () => {
    const trace = path.join(dir, 'calls.txt');
    await service('scheduler', 'scheduler');
    const first = await service('worker', 'worker-a', { UPDRAFT_ITERATE_TRACE: trace });
    const dag = (await DagBag.load(DAGS)).get('it_procs');
    const { runPk, runId } = await triggerDagRun(database, dag, {});
    const tiId = await waitFor(async () => {
      const [row] = await database.rows<{ id: number; n: number }>(sql`select ti.id, (select count(*)::int from iterate_items i where i.ti_id = ti.id and i.state = 'success') as n
        from task_instances ti where ti.run_pk = ${runPk} and ti.task_id = 'touch' and ti.state = 'running'`);
      return row && Number(row.n) >= 40 ? Number(row.id) : null;
    }, 'try 1 to checkpoint some items', 90_000, 20);

    first.proc.child.kill('SIGKILL');
    expect(await first.proc.exited).toBe('SIGKILL');
    const checkpointed = (await itemRows(database, tiId)).filter((r) => r.state === 'success').map((r) => Number(r.item_index));
    expect(checkpointed.length).toBeGreaterThanOrEqual(40);
    expect(checkpointed.length).toBeLessThan(300);

    await service('worker', 'worker-b', { UPDRAFT_ITERATE_TRACE: trace });
    await waitFor(async () => ['success', 'failed'].includes((await queries.dagRuns.getRun(database.db, runId))[0]?.state ?? ''), `run ${runId} to finish`, 90_000);
    const [ti] = await database.rows<{ state: string; try_number: number; progress: unknown }>(sql`select state, try_number, progress from task_instances where id = ${tiId}`);
    expect(ti).toMatchObject({ state: TaskState.SUCCESS, try_number: 2, progress: { done: 300, failed: 0, total: 300 } });
    expect(await queries.xcom.readXCom(database.db, runPk, 'touch', 'return_value', -1)).toEqual(Array.from({ length: 300 }, (_, i) => i));

    const calls = new Map<number, number>();
    const tries = new Map<number, Set<number>>();
    for (const line of readFileSync(trace, 'utf8').trim().split('\n')) {
      const [tryNumber, item] = line.split(':').map(Number);
      calls.set(item, (calls.get(item) ?? 0) + 1);
      if (!tries.has(tryNumber)) tries.set(tryNumber, new Set());
      tries.get(tryNumber)!.add(item);
    }
    for (let i = 0; i < 300; i++) expect(calls.get(i) ?? 0, `calls of item ${i}`).toBeGreaterThanOrEqual(1);
    for (const i of checkpointed) expect(calls.get(i), `calls of checkpointed item ${i}`).toBe(1);
    expect([...(tries.get(2) ?? [])].filter((i) => checkpointed.includes(i))).toEqual([]);
    expect(tries.get(2)!.size).toBeLessThanOrEqual(300 - checkpointed.length);
    const logs = (await queries.logs.readLogs(database.db, tiId, 2)).map((l) => l.message);
    expect(logs[0]).toMatch(new RegExp(`^resuming: (\\d+) of 300 items already done`));
    expect(Number(logs[0].match(/resuming: (\d+)/)![1])).toBeGreaterThanOrEqual(checkpointed.length);
  }, 240_000);
});
