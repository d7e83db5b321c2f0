/**
 * Mapping on PostgreSQL with real processes: a scheduler and two workers started with
 * UPDRAFT_MAX_MAP_LENGTH=5. A list of exactly 5 fans out (twice: the second level over the
 * first's fan-in) and fans in, in map-index order; a list of 6 fails its producer. And a
 * fan-in whose mapped upstream TIs finish at the same instant on two workers still runs.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { openDatabase, queries, RunState, TaskState, type Database } from '../../core/index.ts';
import { createTestDatabase, pgAvailable, waitFor, type TestPg } from '../helpers/pg.ts';
import { Procs } from '../helpers/int-procs.ts';

const DAGS = fileURLToPath(new URL('../fixtures/map-procs', import.meta.url));
const CONFIG = fileURLToPath(new URL('../fixtures/map-procs-config/updraft.config.json', import.meta.url));
const READY = /updraft (scheduler|worker) (\S+):/;

describe.skipIf(!pgAvailable)('mapping across scheduler and worker processes on PostgreSQL', () => {
  let pg: TestPg;
  let database: Database;
  let procs: Procs;

  beforeAll(async () => {
    pg = await createTestDatabase('updraft_map_procs');
    database = await openDatabase({ databaseUrl: pg.url });
    await database.migrate();
  });
  afterAll(async () => {
    await procs?.stopAll();
    await database?.close();
    await pg?.drop();
  });
  beforeEach(({ onTestFailed }) => {
    procs = new Procs({ DATABASE_URL: pg.url, UPDRAFT_CONFIG: CONFIG, UPDRAFT_DAGS_FOLDER: DAGS, UPDRAFT_MAX_MAP_LENGTH: '5' });
    onTestFailed(async () => { process.stderr.write(await procs.report()); });
  });
  afterEach(async () => {
    await procs.stopAll();
  });

  async function trigger(dagId: string): Promise<number> {
    const out = await procs.run(['dags', 'trigger', dagId]);
    expect(out.code, out.output).toBe(0);
    const runId = out.output.match(new RegExp(`queued run (\\S+) of ${dagId}`))![1];
    const [run] = await queries.dagRuns.getRun(database.db, runId, dagId);
    return run.id;
  }
  const finished = (runPk: number) => waitFor(async () => {
    const r = await queries.dagRuns.getRunByPk(database.db, runPk);
    return r && (r.state === RunState.SUCCESS || r.state === RunState.FAILED) ? r.state : null;
  }, `run ${runPk} to finish`, 60_000, 100);

  it('fans out, maps over the fan-in and fans in, in map-index order; a list over the limit fails its producer', async () => {
    const started = [procs.start('scheduler', ['scheduler']), procs.start('worker-1', ['worker', '--slots', '4']), procs.start('worker-2', ['worker', '--slots', '4'])];
    const ids = await Promise.all(started.map(async (p) => (await procs.waitForOutput(p, READY))[2]));

    const okPk = await trigger('map_procs_fanout');
    const badPk = await trigger('map_procs_too_long');
    expect(await finished(okPk)).toBe(RunState.SUCCESS);
    expect(await finished(badPk)).toBe(RunState.FAILED);

    const tis = await queries.dagRuns.runTaskInstances(database.db, okPk);
    for (const taskId of ['square', 'label']) {
      const mapped = tis.filter((t) => t.taskId === taskId).sort((a, b) => a.mapIndex - b.mapIndex);
      expect(mapped.map((t) => [t.mapIndex, t.state, t.tryNumber]), taskId).toEqual([0, 1, 2, 3, 4].map((i) => [i, TaskState.SUCCESS, 1]));
      for (const t of mapped) expect(ids.slice(1)).toContain(t.workerId);
    }
    expect(await queries.xcom.readXCom(database.db, okPk, 'collect', 'return_value', -1)).toEqual(['0:1', '1:4', '2:9', '3:16', '4:25']);

    const bad = await queries.dagRuns.runTaskInstances(database.db, badPk);
    const producer = bad.find((t) => t.taskId === 'produce')!;
    expect(producer).toMatchObject({ state: TaskState.FAILED, tryNumber: 1 });
    expect(producer.error).toBe('MapLengthExceeded: task "produce" of DAG "map_procs_too_long" returned 6 items for "label" to map over, '
      + 'more than maxMapLength 5; raise UPDRAFT_MAX_MAP_LENGTH or use iterate()');
    expect(bad.filter((t) => t.taskId === 'label').map((t) => [t.mapIndex, t.state])).toEqual([[-1, TaskState.UPSTREAM_FAILED]]);
    expect(bad.find((t) => t.taskId === 'collect')!.state).toBe(TaskState.UPSTREAM_FAILED);
  }, 240_000);

  it('schedules the fan-in when the last mapped TIs finish at the same moment on two workers', async () => {
    const workers = await Promise.all([procs.start('scheduler', ['scheduler']), procs.start('worker-1', ['worker', '--slots', '1']),
      procs.start('worker-2', ['worker', '--slots', '1'])].map(async (p) => (await procs.waitForOutput(p, READY))[2]));
    for (let n = 0; n < 4; n++) {
      const runPk = await trigger('map_procs_fanin_race');
      // Each worker finishes one item; whichever writes its result last must see both and schedule fan_in.
      const state = await waitFor(async () => {
        const r = await queries.dagRuns.getRunByPk(database.db, runPk);
        return r && (r.state === RunState.SUCCESS || r.state === RunState.FAILED) ? r.state : null;
      }, `run ${n + 1} to finish (fan_in is never scheduled if each worker saw the other's item still running)`, 20_000, 100);
      expect(state).toBe(RunState.SUCCESS);
      const tis = await queries.dagRuns.runTaskInstances(database.db, runPk);
      expect(tis.filter((t) => t.taskId === 'together').map((t) => t.workerId).sort()).toEqual(workers.slice(1).sort());
      expect(await queries.xcom.readXCom(database.db, runPk, 'fan_in', 'return_value', -1)).toEqual([0, 1]);
    }
  }, 240_000);
});
