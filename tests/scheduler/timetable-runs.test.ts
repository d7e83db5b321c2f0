/**
 * Duration, @once and @continuous schedules, and pausing, from an in-process scheduler (and a
 * worker where runs must end) on in-memory PGlite.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { openDatabase, queries, DagBag, Worker, RunState, RunType, type Database } from '../../core/index.ts';
import { Scheduler } from '../../scheduler/index.ts';
import { waitFor } from '../helpers/pg.ts';

const FOLDER = fileURLToPath(new URL('../fixtures/timetables', import.meta.url));
const MIN = 60_000;

describe('duration, @once and @continuous schedules', () => {
  let database: Database;
  let scheduler: Scheduler | undefined;
  let worker: Worker | undefined;
  let dagBag: DagBag;

  // One database for the suite: only the @continuous case starts a worker, and it runs last.
  beforeAll(async () => {
    database = await openDatabase({ dataDir: 'memory://' });
    await database.migrate();
    dagBag = await DagBag.load(FOLDER);
    scheduler = await Scheduler.create({ database, dagBag, watchFiles: false, zombieThresholdMs: 3_600_000, log: () => {} });
    await scheduler.wake();
  });
  afterAll(async () => {
    await worker?.stop();
    await scheduler?.stop();
    await database.close();
  });

  const runsOf = async (dagId: string) => (await queries.dagRuns.listRuns(database.db, dagId, 500))
    .sort((a, b) => a.logicalDate.getTime() - b.logicalDate.getTime());
  const startOf = (dagId: string) => dagBag.get(dagId).startDate!.getTime();

  it('a duration schedule catches up every ended interval from startDate', async () => {
    const runs = await runsOf('tt_every_30m');
    const t0 = startOf('tt_every_30m');
    expect(runs.map((r) => [r.dataIntervalStart!.getTime() - t0, r.dataIntervalEnd!.getTime() - t0])).toEqual([
      [0, 30 * MIN], [30 * MIN, 60 * MIN], [60 * MIN, 90 * MIN], [90 * MIN, 120 * MIN],
    ]);
    expect(runs.every((r) => r.runType === 'scheduled' && r.logicalDate.getTime() === r.dataIntervalStart!.getTime())).toBe(true);
    await scheduler!.wake();
    expect(await runsOf('tt_every_30m')).toHaveLength(4);
  });

  it('a duration schedule without catchup creates only the latest interval', async () => {
    const runs = await runsOf('tt_every_30m_latest');
    expect(runs.map((r) => r.dataIntervalStart!.getTime() - startOf('tt_every_30m_latest'))).toEqual([90 * MIN]);
  });

  it('@once creates one run at startDate and no more', async () => {
    await scheduler!.wake();
    const runs = await runsOf('tt_once');
    expect(runs.map((r) => [r.logicalDate.getTime(), r.dataIntervalEnd!.getTime()])).toEqual([[startOf('tt_once'), startOf('tt_once')]]);
  });

  it('@continuous starts the next run as soon as the last one ends', async () => {
    expect(await runsOf('tt_continuous')).toHaveLength(1);
    await scheduler!.wake();
    expect(await runsOf('tt_continuous')).toHaveLength(1);
    worker = await Worker.create({ database, dagBag, slots: 4, heartbeatMs: 500 });
    const runs = await waitFor(async () => {
      const rs = await runsOf('tt_continuous');
      return rs.filter((r) => r.state === RunState.SUCCESS).length >= 2 && rs;
    }, 'two finished @continuous runs', 30_000, 20);
    // Never two at once, and each interval starts where the previous one ended.
    expect(runs.filter((r) => r.state === RunState.QUEUED || r.state === RunState.RUNNING).length).toBeLessThanOrEqual(1);
    for (let i = 1; i < runs.length; i++) {
      expect(runs[i].dataIntervalStart).toEqual(runs[i - 1].dataIntervalEnd);
      if (runs[i - 1].endDate) expect(runs[i].queuedAt.getTime()).toBeGreaterThanOrEqual(runs[i - 1].endDate!.getTime() - 5);
    }
  });
});

describe('pausing', () => {
  let database: Database;
  let scheduler: Scheduler | undefined;
  let worker: Worker | undefined;

  afterEach(async () => {
    await worker?.stop();
    await scheduler?.stop();
    worker = scheduler = undefined;
    await database.close();
  });

  it('a DAG paused upon creation creates and starts no runs until unpaused, and a resync keeps it paused', async () => {
    database = await openDatabase({ dataDir: 'memory://' });
    await database.migrate();
    const dagBag = await DagBag.load(FOLDER);
    scheduler = await Scheduler.create({ database, dagBag, watchFiles: false, zombieThresholdMs: 3_600_000, log: () => {} });
    await scheduler.wake();
    const runs = () => queries.dagRuns.listRuns(database.db, 'tt_paused', 500);
    const isPaused = async (dagId: string) => (await queries.dags.listDagRows(database.db)).find((d) => d.dagId === dagId)!.isPaused;
    expect(await isPaused('tt_paused')).toBe(true);
    expect(await isPaused('tt_every_30m')).toBe(false);
    expect(await runs()).toEqual([]);

    // A manual run of a paused DAG waits in the queue.
    const logicalDate = new Date();
    await queries.dagRuns.createRun(database.db, {
      dagId: 'tt_paused', runId: 'manual__waiting', runType: RunType.MANUAL, logicalDate, dataIntervalStart: logicalDate, dataIntervalEnd: logicalDate, conf: {},
    });
    await scheduler.wake();
    expect((await runs()).map((r) => r.state)).toEqual([RunState.QUEUED]);
    await database.db.transaction((tx) => queries.dags.syncDagBag(tx, dagBag.dags.values(), dagBag.errors));
    expect(await isPaused('tt_paused')).toBe(true);

    await queries.dags.setPaused(database.db, 'tt_paused', false);
    worker = await Worker.create({ database, dagBag, slots: 8, heartbeatMs: 500 });
    await scheduler.wake();
    const done = await waitFor(async () => {
      const rs = await runs();
      return rs.length === 5 && rs.every((r) => r.state === RunState.SUCCESS) && rs;
    }, 'the four catchup runs and the manual one to succeed', 30_000, 20);
    expect(done.filter((r) => r.runType === RunType.SCHEDULED)).toHaveLength(4);
  });
});
