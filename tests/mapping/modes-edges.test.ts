/**
 * Mapped tasks in every mode (sync in threads, async on the loop, deferring and resuming),
 * empty lists (skip, with trigger rules deciding downstream), lists over maxMapLength, and
 * nested mapping. In-process on PGlite: runDagLocally, or a scheduler and a worker built
 * here when maxMapLength must be small.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { openDatabase, queries, triggerDagRun, DagBag, Worker, RunState, TaskState, type Database } from '../../core/index.ts';
import { Scheduler } from '../../scheduler/index.ts';
import { runDagLocally } from '../../cli/local-run.ts';
import { waitFor } from '../helpers/pg.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/map-core', import.meta.url));

describe('mapping modes and edge cases (in-process on PGlite)', () => {
  let bag: DagBag;
  let database: Database;

  beforeAll(async () => {
    bag = await DagBag.load(FIXTURES);
    expect([...bag.errors]).toEqual([]);
  });
  beforeEach(async () => {
    database = await openDatabase({ dataDir: 'memory://' });
    await database.migrate();
  });
  afterEach(async () => {
    await database.close();
  });

  const tisOf = (res: { taskInstances: { taskId: string; mapIndex: number; state: string; tryNumber: number; id: number; error: string | null }[] }, taskId: string) =>
    res.taskInstances.filter((t) => t.taskId === taskId).sort((a, b) => a.mapIndex - b.mapIndex);
  const runPkOf = async (runId: string, dagId: string) => (await queries.dagRuns.getRun(database.db, runId, dagId))[0].id;
  const xcom = (runPk: number, taskId: string, mapIndex = -1) => queries.xcom.readXCom(database.db, runPk, taskId, 'return_value', mapIndex);

  /** One run with a scheduler and a worker whose maxMapLength is `maxMapLength`. */
  async function runWithMaxMapLength(dagId: string, maxMapLength: number) {
    const log: string[] = [];
    const scheduler = await Scheduler.create({
      database, dagBag: bag, watchFiles: false, createScheduledRuns: false, maxMapLength, log: (m) => log.push(m),
    });
    await scheduler.wake();
    const worker = await Worker.create({ database, dagBag: bag, slots: 8, maxMapLength, log: (m) => log.push(m) });
    try {
      const { runPk } = await triggerDagRun(database, bag.get(dagId));
      const state = await waitFor(async () => {
        const r = await queries.dagRuns.getRunByPk(database.db, runPk);
        return r && (r.state === RunState.SUCCESS || r.state === RunState.FAILED) ? r.state : null;
      }, `run of ${dagId} to finish (${log.slice(-5).join(' | ')})`, 60_000);
      const tis = new Map<string, Awaited<ReturnType<typeof queries.dagRuns.runTaskInstances>>>();
      for (const t of await queries.dagRuns.runTaskInstances(database.db, runPk)) tis.set(t.taskId, [...(tis.get(t.taskId) ?? []), t]);
      return { state, runPk, tis };
    } finally {
      await worker.stop();
      await scheduler.stop();
    }
  }

  it('runs mapped sync tasks in threads, async ones on the loop, and deferring ones through the triggerer', async () => {
    const res = await runDagLocally(database, bag, bag.get('map_modes'), {});
    expect(res.state).toBe(RunState.SUCCESS);
    const runPk = await runPkOf(res.runId, 'map_modes');
    for (const [taskId, ns, mainThread] of [['sync_item', [1, 2, 3], false], ['async_item', [4, 5, 6], true]] as const) {
      expect(tisOf(res, taskId).map((t) => [t.mapIndex, t.state, t.tryNumber])).toEqual(ns.map((_, i) => [i, TaskState.SUCCESS, 1]));
      for (const [i, n] of ns.entries()) {
        expect(await xcom(runPk, taskId, i), `${taskId}[${i}]`).toMatchObject({ n, square: n * n, mapIndex: i, mainThread });
      }
    }
    for (const [taskId, ns, factor, mainThread] of [['defer_item', [7, 8, 9], 10, true], ['sync_defer_item', [2, 3], 100, false]] as const) {
      const tis = tisOf(res, taskId);
      expect(tis.map((t) => [t.mapIndex, t.state, t.tryNumber])).toEqual(ns.map((_, i) => [i, TaskState.SUCCESS, 1]));
      for (const [i, n] of ns.entries()) {
        // Each item deferred on its own trigger and resumed, in the same try, with that trigger's event.
        expect(await xcom(runPk, taskId, i), `${taskId}[${i}]`).toMatchObject({ n, mapIndex: i, event: { echoed: n * factor }, tryNumber: 1, mainThread });
        const lines = (await queries.logs.readLogs(database.db, tis[i].id, 1)).map((l) => l.message);
        expect(lines.filter((l) => l.startsWith('deferred on trigger map.EchoTrigger'))).toHaveLength(1);
      }
    }
    expect(await xcom(runPk, 'defer_item', 1)).toMatchObject({ resumeKwargs: { n: 8 } });
  });

  it('skips a mapped task with an empty list; all_success downstream is skipped, all_done runs with []', async () => {
    const res = await runDagLocally(database, bag, bag.get('map_empty'), {});
    expect(res.state).toBe(RunState.SUCCESS);
    const runPk = await runPkOf(res.runId, 'map_empty');
    const state = (taskId: string) => tisOf(res, taskId).map((t) => [t.mapIndex, t.state]);
    expect(state('nothing')).toEqual([[-1, TaskState.SUCCESS]]);
    expect(state('each')).toEqual([[-1, TaskState.SKIPPED]]);
    expect(state('each_literal')).toEqual([[-1, TaskState.SKIPPED]]);
    expect(state('strict')).toEqual([[-1, TaskState.SKIPPED]]);
    expect(state('lenient')).toEqual([[-1, TaskState.SUCCESS]]);
    expect(state('lenient_literal')).toEqual([[-1, TaskState.SUCCESS]]);
    expect(await xcom(runPk, 'lenient')).toEqual({ got: [] });
    expect(await xcom(runPk, 'lenient_literal')).toEqual({ got: [] });
  });

  it('fails a producer whose list is over maxMapLength, at once and without retries; the mapped task is upstream_failed', async () => {
    const res = await runWithMaxMapLength('map_over_limit', 5);
    expect(res.state).toBe(RunState.FAILED);
    const [producer] = res.tis.get('too_many')!;
    expect(producer).toMatchObject({ state: TaskState.FAILED, tryNumber: 1 });
    expect(producer.error).toBe('MapLengthExceeded: task "too_many" of DAG "map_over_limit" returned 8 items for "consume" to map over, '
      + 'more than maxMapLength 5; raise UPDRAFT_MAX_MAP_LENGTH or use iterate()');
    expect(res.tis.get('consume')!.map((t) => [t.mapIndex, t.state])).toEqual([[-1, TaskState.UPSTREAM_FAILED]]);
    expect(res.tis.get('after')!.map((t) => [t.mapIndex, t.state])).toEqual([[-1, TaskState.UPSTREAM_FAILED]]);
    const history = await database.rows<{ try_number: number; state: string }>(
      sql`select try_number, state from task_instance_history where ti_id = ${producer.id} order by id`);
    expect(history.map((h) => [Number(h.try_number), h.state])).toEqual([[1, TaskState.FAILED]]);
  });

  it('fails a producer that returns no list for a mapped consumer, without retries', async () => {
    const res = await runWithMaxMapLength('map_not_a_list', 5);
    expect(res.state).toBe(RunState.FAILED);
    const [producer] = res.tis.get('not_a_list')!;
    expect(producer).toMatchObject({ state: TaskState.FAILED, tryNumber: 1 });
    expect(producer.error).toBe('MapLengthExceeded: task "not_a_list" of DAG "map_not_a_list" returned a string, but "consume" maps over it and needs a list');
    expect(res.tis.get('consume')!.map((t) => [t.mapIndex, t.state])).toEqual([[-1, TaskState.UPSTREAM_FAILED]]);
  });

  it('fails a mapped task whose literal list is over maxMapLength, and accepts a list exactly at the limit', async () => {
    const literal = await runWithMaxMapLength('map_over_limit_literal', 5);
    expect(literal.state).toBe(RunState.FAILED);
    const [consume] = literal.tis.get('consume')!;
    expect(consume).toMatchObject({ mapIndex: -1, state: TaskState.FAILED });
    expect(consume.error).toBe('MapLengthExceeded: task "consume" would expand to 7 TIs, over maxMapLength 5; raise UPDRAFT_MAX_MAP_LENGTH or use iterate()');
    expect(literal.tis.get('after')!.map((t) => t.state)).toEqual([TaskState.UPSTREAM_FAILED]);

    const atLimit = await runWithMaxMapLength('map_at_limit', 5);
    expect(atLimit.state).toBe(RunState.SUCCESS);
    expect(atLimit.tis.get('consume')!.map((t) => t.mapIndex).sort()).toEqual([0, 1, 2, 3, 4]);
    expect(await xcom(atLimit.runPk, 'after')).toEqual([1, 2, 3, 4, 5]);
  });

  it('maps over a mapped task\'s fan-in list (nested mapping)', async () => {
    const res = await runDagLocally(database, bag, bag.get('map_nested'), {});
    const runPk = await runPkOf(res.runId, 'map_nested');
    const summary = res.taskInstances.map((t) => `${t.taskId}[${t.mapIndex}] ${t.state}${t.error ? `: ${t.error}` : ''}`);
    expect(res.state, summary.join('\n')).toBe(RunState.SUCCESS);
    expect(tisOf(res, 'double').map((t) => [t.mapIndex, t.state])).toEqual([[0, TaskState.SUCCESS], [1, TaskState.SUCCESS], [2, TaskState.SUCCESS]]);
    expect(tisOf(res, 'inc').map((t) => [t.mapIndex, t.state])).toEqual([[0, TaskState.SUCCESS], [1, TaskState.SUCCESS], [2, TaskState.SUCCESS]]);
    expect(await xcom(runPk, 'inc', 1)).toBe('1<-1:5');
    expect(await xcom(runPk, 'total')).toEqual(['0<-0:3', '1<-1:5', '2<-2:7']);
  });
});
