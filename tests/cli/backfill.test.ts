/**
 * `dags backfill`: the plan for each reprocess behaviour, the dry run through the real command,
 * and a backfill run to the end by an in-process scheduler and worker, throttled by its run tags.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { DagBag, openDatabase, queries, schema, RunState, RunType, Worker, type Database } from '../../core/index.ts';
import { Scheduler } from '../../scheduler/index.ts';
import { planBackfill, queueBackfill, followBackfill } from '../../cli/commands/backfill.ts';
import { ROOT, runCli } from '../helpers/cli.ts';

const FOLDER = path.join(ROOT, 'tests/fixtures/backfill');
const day = (d: number) => new Date(Date.UTC(2024, 0, d));

describe('backfill plans', () => {
  let database: Database;
  let bag: DagBag;
  let scheduler: Scheduler | undefined;
  let worker: Worker | undefined;

  beforeEach(async () => {
    database = await openDatabase({ dataDir: 'memory://' });
    await database.migrate();
    bag = await DagBag.load(FOLDER);
    await database.db.transaction((tx) => queries.dags.syncDagBag(tx, bag.dags.values(), bag.errors));
    // Jan 2 succeeded, Jan 3 failed, Jan 4 is still running.
    for (const [d, state] of [[2, RunState.SUCCESS], [3, RunState.FAILED], [4, RunState.RUNNING]] as const) {
      const pk = await queries.dagRuns.createRun(database.db, {
        dagId: 'bf_daily', runId: `scheduled__${day(d).toISOString()}`, runType: RunType.SCHEDULED, logicalDate: day(d), dataIntervalStart: day(d), dataIntervalEnd: day(d + 1), conf: {},
      });
      await database.db.update(schema.dagRuns).set({ state }).where(eq(schema.dagRuns.id, pk!));
    }
  });
  afterEach(async () => {
    await worker?.stop();
    await scheduler?.stop();
    worker = scheduler = undefined;
    await database.close();
  });

  const actions = async (reprocess: 'none' | 'failed' | 'completed') =>
    (await planBackfill(database, bag.get('bf_daily'), day(1), day(5), reprocess)).map((p) => `${p.logicalDate.getUTCDate()}:${p.action}`);

  it('none skips every interval that has a run', async () => {
    expect(await actions('none')).toEqual(['1:create', '2:skip', '3:skip', '4:skip', '5:create']);
  });

  it('failed re-runs failed intervals too', async () => {
    expect(await actions('failed')).toEqual(['1:create', '2:skip', '3:reprocess', '4:skip', '5:create']);
  });

  it('completed re-runs every finished interval, never a running one', async () => {
    expect(await actions('completed')).toEqual(['1:create', '2:reprocess', '3:reprocess', '4:skip', '5:create']);
  });

  it('refuses a DAG without a time schedule', async () => {
    await expect(planBackfill(database, bag.get('bf_manual'), day(1), day(2), 'none')).rejects.toThrow('DAG "bf_manual" cannot be backfilled: it has no cron or duration schedule');
  });

  it('runs the backfill to the end as backfill runs, at most --max-active-runs at once, newest first backwards', async () => {
    const dag = bag.get('bf_daily');
    const plan = [...await planBackfill(database, dag, day(1), day(5), 'completed')].reverse();
    const { runPks } = await queueBackfill(database, dag, plan, { maxActiveRuns: 2, runBackwards: true });
    expect(runPks).toHaveLength(4);
    scheduler = await Scheduler.create({ database, dagBag: bag, watchFiles: false, createScheduledRuns: false, zombieThresholdMs: 3_600_000, log: () => {} });
    await scheduler.wake();
    // Newest first: Jan 5 and Jan 3 start, though the DAG's own maxActiveRuns is 1 and Jan 4 runs.
    const started = (await queries.dagRuns.listRuns(database.db, 'bf_daily')).filter((r) => r.runType === RunType.BACKFILL && r.state === RunState.RUNNING);
    expect(started.map((r) => r.logicalDate.getUTCDate()).sort()).toEqual([3, 5]);
    worker = await Worker.create({ database, dagBag: bag, slots: 8, heartbeatMs: 500 });
    let most = 0;
    const counts = await followBackfill(database, runPks, async () => {
      const running = (await queries.dagRuns.listRuns(database.db, 'bf_daily')).filter((r) => r.runType === RunType.BACKFILL && r.state === RunState.RUNNING);
      most = Math.max(most, running.length);
    }, 20);
    expect(counts).toMatchObject({ success: 4, failed: 0 });
    expect(most).toBeLessThanOrEqual(2);
    const runs = await queries.dagRuns.listRuns(database.db, 'bf_daily');
    const jan3 = runs.find((r) => r.logicalDate.getTime() === day(3).getTime())!;
    expect(jan3).toMatchObject({ runType: RunType.BACKFILL, state: RunState.SUCCESS, runId: `scheduled__${day(3).toISOString()}` });
    expect(await queries.xcom.readXCom(database.db, jan3.id, 'day', 'return_value', -1)).toBe(day(3).toISOString());
    expect(runs.find((r) => r.logicalDate.getTime() === day(4).getTime())!.runType).toBe(RunType.SCHEDULED);
  });
});

describe('updraft dags backfill --dry-run', () => {
  let dataDir: string;
  beforeAll(() => { dataDir = mkdtempSync(path.join(os.tmpdir(), 'updraft-backfill-cli-')); });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('lists the intervals and queues nothing', async () => {
    const env = { UPDRAFT_DATA_DIR: dataDir, UPDRAFT_DAGS_FOLDER: FOLDER };
    const r = await runCli(['dags', 'backfill', 'bf_daily', '--start', '2024-01-01', '--end', '2024-01-03', '--dry-run', '--run-backwards'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^logicalDate\s+dataIntervalEnd\s+action\s+existingRun\n-+/);
    expect(r.stdout).toContain('2024-01-03T00:00:00.000Z  2024-01-04T00:00:00.000Z  create\n2024-01-02T00:00:00.000Z');
    expect(r.stdout).toMatch(/3 of 3 interval\(s\) would run \(dry run: nothing queued\)\n$/);
    const runs = await runCli(['runs', 'list', '--json'], env);
    expect(JSON.parse(runs.stdout)).toEqual([]);
    const bad = await runCli(['dags', 'backfill', 'bf_daily', '--start', '2024-01-01', '--end', '2024-01-03', '--reprocess-behavior', 'all'], env);
    expect(bad.stderr).toBe('updraft: --reprocess-behavior must be none, failed or completed, got "all"\n');
  });
});
