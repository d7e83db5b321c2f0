/**
 * Dynamic task mapping in-process on PGlite (runDagLocally: real scheduler, worker and
 * triggerer): expand over literal lists and upstream outputs, ctx.mapIndex, fan-in in
 * map-index order whatever the finishing order, partial() with a cartesian product,
 * expandKwargs, TIs created only once the producer finished, and per-TI retries.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { openDatabase, queries, DagBag, RunState, TaskState, type Database } from '../../core/index.ts';
import { runDagLocally } from '../../cli/local-run.ts';
import { waitFor } from '../helpers/pg.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/map-core', import.meta.url));
const gates = () => ((globalThis as { __updraftMapTest?: { gates: Record<string, boolean> } }).__updraftMapTest ??= { gates: {} }).gates;

describe('expand, fan-in and retries (runDagLocally on PGlite)', () => {
  let bag: DagBag;
  let database: Database;

  beforeAll(async () => {
    bag = await DagBag.load(FIXTURES);
    expect([...bag.errors]).toEqual([]);
  });
  beforeEach(async () => {
    for (const k of Object.keys(gates())) delete gates()[k];
    database = await openDatabase({ dataDir: 'memory://' });
    await database.migrate();
  });
  afterEach(async () => {
    gates().map_gate = true; // never leave a gated task hanging
    await database.close();
  });

  async function run(dagId: string) {
    const res = await runDagLocally(database, bag, bag.get(dagId), {});
    const [row] = await queries.dagRuns.getRun(database.db, res.runId, dagId);
    const tis = (taskId: string) => res.taskInstances.filter((t) => t.taskId === taskId).sort((a, b) => a.mapIndex - b.mapIndex);
    const xcom = (taskId: string, mapIndex = -1) => queries.xcom.readXCom(database.db, row.id, taskId, 'return_value', mapIndex);
    return { ...res, runPk: row.id, tis, xcom };
  }

  it('expands over a literal list: one TI per item, each seeing its ctx.mapIndex', async () => {
    const res = await run('map_literal');
    expect(res.state).toBe(RunState.SUCCESS);
    const mapped = res.tis('who_am_i');
    expect(mapped.map((t) => [t.mapIndex, t.state, t.tryNumber])).toEqual([
      [0, TaskState.SUCCESS, 1], [1, TaskState.SUCCESS, 1], [2, TaskState.SUCCESS, 1],
    ]);
    for (const t of mapped) expect(await res.xcom('who_am_i', t.mapIndex)).toEqual({ x: [10, 20, 30][t.mapIndex], mapIndex: t.mapIndex });
    // No unexpanded TI is left behind, and the fan-in is not itself mapped.
    expect(mapped.some((t) => t.mapIndex === -1)).toBe(false);
    expect(res.tis('collect').map((t) => t.mapIndex)).toEqual([-1]);
    expect(await res.xcom('collect')).toEqual([{ x: 10, mapIndex: 0 }, { x: 20, mapIndex: 1 }, { x: 30, mapIndex: 2 }]);
  });

  it('expands over an upstream output; the fan-in is in map-index order although items finished in reverse', async () => {
    const res = await run('map_ordered');
    expect(res.state).toBe(RunState.SUCCESS);
    expect(res.tis('reversed').map((t) => [t.mapIndex, t.state])).toEqual([0, 1, 2, 3, 4].map((i) => [i, TaskState.SUCCESS]));
    const results = await res.xcom('collect') as { i: number; mapIndex: number; endedAt: number }[];
    expect(results.map((r) => [r.i, r.mapIndex])).toEqual([[0, 0], [1, 1], [2, 2], [3, 3], [4, 4]]);
    // The items did not finish in index order: item 0 slept 600 ms longer than item 4.
    expect(results[0].endedAt).toBeGreaterThan(results[4].endedAt);
  });

  it('partial() with two expanded keys maps over their cartesian product, first key slowest', async () => {
    const res = await run('map_product');
    expect(res.state).toBe(RunState.SUCCESS);
    const mapped = res.tis('combo');
    expect(mapped).toHaveLength(6);
    expect(mapped.map((t) => t.mapIndex)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(await res.xcom('collect')).toEqual(['a-1', 'a-2', 'a-3', 'b-1', 'b-2', 'b-3'].map((id, mapIndex) => ({ id, mapIndex })));
  });

  it('expandKwargs maps over whole input objects, merged over partial() constants', async () => {
    const res = await run('map_kwargs');
    expect(res.state).toBe(RunState.SUCCESS);
    expect(res.tis('greet').map((t) => t.mapIndex)).toEqual([0, 1, 2]);
    expect(await res.xcom('collect')).toEqual(['0:hi ada!', '1:hi bob!!', '2:hi cy!!!']);
    expect(res.tis('greet_literal').map((t) => [t.mapIndex, t.state])).toEqual([[0, TaskState.SUCCESS]]);
    expect(await res.xcom('greet_literal', 0)).toBe('0:hey literal');
  });

  it('creates mapped TIs only once the upstream has finished', async () => {
    const done = run('map_gated');
    const rows = () => database.rows<{ task_id: string; map_index: number; state: string; scheduled_at: Date | string | null; end_date: Date | string | null }>(
      sql`select task_id, map_index, state, scheduled_at, end_date from task_instances where dag_id = 'map_gated' order by task_id, map_index`);
    await waitFor(async () => (await rows()).some((r) => r.task_id === 'gated_source' && r.state === TaskState.RUNNING), 'gated_source to run', 60_000, 20);
    // The run has started and its producer runs: the mapped task is still only its unexpanded TI.
    const upper = (await rows()).filter((r) => r.task_id === 'upper');
    expect(upper.map((r) => [Number(r.map_index), r.state])).toEqual([[-1, TaskState.NONE]]);

    gates().map_gate = true;
    const res = await done;
    expect(res.state).toBe(RunState.SUCCESS);
    const after = await rows();
    const source = after.find((r) => r.task_id === 'gated_source')!;
    const mapped = after.filter((r) => r.task_id === 'upper');
    expect(mapped.map((r) => [Number(r.map_index), r.state])).toEqual([[0, TaskState.SUCCESS], [1, TaskState.SUCCESS], [2, TaskState.SUCCESS]]);
    for (const m of mapped) expect(new Date(m.scheduled_at!).getTime()).toBeGreaterThanOrEqual(new Date(source.end_date!).getTime());
    expect(await res.xcom('collect')).toEqual(['P', 'Q', 'R']);
  });

  it('retries each mapped TI on its own', async () => {
    const res = await run('map_retry');
    expect(res.state).toBe(RunState.SUCCESS);
    const mapped = res.tis('flaky');
    expect(mapped.map((t) => [t.mapIndex, t.state, t.tryNumber])).toEqual([
      [0, TaskState.SUCCESS, 1], [1, TaskState.SUCCESS, 1], [2, TaskState.SUCCESS, 2], [3, TaskState.SUCCESS, 1],
    ]);
    const history = await database.rows<{ map_index: number; try_number: number; state: string; error: string | null }>(
      sql`select map_index, try_number, state, error from task_instance_history where dag_id = 'map_retry' and task_id = 'flaky' order by map_index, try_number`);
    expect(history.map((h) => [Number(h.map_index), Number(h.try_number), h.state])).toEqual([
      [0, 1, TaskState.SUCCESS], [1, 1, TaskState.SUCCESS], [2, 1, TaskState.UP_FOR_RETRY], [2, 2, TaskState.SUCCESS], [3, 1, TaskState.SUCCESS],
    ]);
    expect(history.find((h) => Number(h.map_index) === 2 && Number(h.try_number) === 1)!.error).toBe('Error: item 102 fails on its first try');
    expect(await res.xcom('collect')).toEqual([
      { i: 100, tryNumber: 1 }, { i: 101, tryNumber: 1 }, { i: 102, tryNumber: 2 }, { i: 103, tryNumber: 1 },
    ]);
  });
});
