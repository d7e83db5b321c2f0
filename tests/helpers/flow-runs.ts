/**
 * An in-process scheduler and worker on one database, for tests that need more than one run
 * or act on a run between its passes (clearing, marking): runs are created with explicit
 * logical dates and waited for by condition.
 */
import { afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import { Channel, DagBag, notify, queries, RunState, RunType, Worker, type Dag, type Database } from '../../core/index.ts';
import { Scheduler } from '../../scheduler/index.ts';
import { runDagLocally } from '../../cli/local-run.ts';
import { drivers, waitFor, type Driver } from './pg.ts';

export interface Services {
  createRun(dag: Dag, logicalDate: string, conf?: Record<string, unknown>): Promise<{ runPk: number; runId: string }>;
  /** Wait until the run is success or failed; returns its state and TIs by "task" or "task[i]". */
  finished(runPk: number): Promise<{ state: string; tis: Map<string, { state: string; tryNumber: number; startDate: Date | null; endDate: Date | null; error: string | null }> }>;
  tis(runPk: number): Promise<Map<string, { state: string; tryNumber: number; startDate: Date | null; endDate: Date | null; error: string | null }>>;
  stop(): Promise<void>;
}

export async function startServices(database: Database, bag: DagBag): Promise<Services> {
  await database.db.transaction((tx) => queries.dags.syncDagBag(tx, bag.dags.values(), bag.errors));
  const scheduler = await Scheduler.create({ database, dagBag: bag, watchFiles: false, createScheduledRuns: false, zombieThresholdMs: 3_600_000 });
  const worker = await Worker.create({ database, dagBag: bag, slots: 8, log: () => {} });
  const tis = async (runPk: number) => new Map((await queries.dagRuns.runTaskInstances(database.db, runPk))
    .map((t) => [`${t.taskId}${t.mapIndex >= 0 ? `[${t.mapIndex}]` : ''}`, { state: t.state, tryNumber: t.tryNumber, startDate: t.startDate, endDate: t.endDate, error: t.error }]));
  return {
    async createRun(dag, logicalDate, conf = {}) {
      const runId = `manual__${logicalDate}`;
      const at = new Date(logicalDate);
      const runPk = await database.db.transaction(async (tx) => {
        const pk = await queries.dagRuns.createRun(tx, { dagId: dag.dagId, runId, runType: RunType.MANUAL, logicalDate: at, dataIntervalStart: at, dataIntervalEnd: at, conf });
        await notify(tx, Channel.SCHEDULER, 'run');
        return pk!;
      });
      return { runPk, runId };
    },
    async finished(runPk) {
      const state = await waitFor(async () => {
        const run = await queries.dagRuns.getRunByPk(database.db, runPk);
        return run && (run.state === RunState.SUCCESS || run.state === RunState.FAILED) ? run.state : null;
      }, `run #${runPk} to finish`);
      return { state, tis: await tis(runPk) };
    },
    tis,
    async stop() {
      await worker.stop();
      await scheduler.stop();
    },
  };
}

/**
 * Register hooks for a suite over the `flow-control` fixtures: the bag loaded once, a fresh
 * database per test (in-memory PGlite unless `driver` says otherwise), and `run`
 * (runDagLocally) with TI states keyed "task" or "task[i]".
 */
export function useFlowFixtures(driver: Driver = drivers[0]) {
  const ctx = {} as { bag: DagBag; database: Database; cleanup: () => Promise<void> };
  beforeAll(async () => {
    ctx.bag = await DagBag.load(fileURLToPath(new URL('../fixtures/flow-control', import.meta.url)));
    expect([...ctx.bag.errors]).toEqual([]);
  });
  beforeEach(async () => {
    ({ database: ctx.database, cleanup: ctx.cleanup } = await driver.open());
  });
  afterEach(async () => {
    await ctx.cleanup();
  });
  return {
    get bag() { return ctx.bag; },
    get database() { return ctx.database; },
    async run(dagId: string, conf: Record<string, unknown> = {}) {
      const res = await runDagLocally(ctx.database, ctx.bag, ctx.bag.get(dagId), conf);
      const [row] = await queries.dagRuns.getRun(ctx.database.db, res.runId, dagId);
      return {
        state: res.state,
        states: Object.fromEntries(res.taskInstances.map((t) => [`${t.taskId}${t.mapIndex >= 0 ? `[${t.mapIndex}]` : ''}`, t.state])),
        error: (taskId: string) => res.taskInstances.find((t) => t.taskId === taskId)?.error,
        xcom: (taskId: string, mapIndex = -1) => queries.xcom.readXCom(ctx.database.db, row.id, taskId, 'return_value', mapIndex),
      };
    },
  };
}
