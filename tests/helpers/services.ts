/**
 * A scheduler, a worker and a triggerer in this process on one database, with the worker's
 * slots chosen by the test (runDagLocally's are fixed): for tests that need a small worker or
 * services that outlive one run. `runToEnd` triggers a run and waits for it to finish.
 */
import { queries, triggerDagRun, Worker, type Dag, type DagBag, type Database } from '../../core/index.ts';
import { Scheduler } from '../../scheduler/index.ts';
import { Triggerer } from '../../triggerer/index.ts';
import { waitFor } from './pg.ts';

export interface Services {
  scheduler: Scheduler;
  worker: Worker;
  triggerer: Triggerer;
  stop(): Promise<void>;
}

export async function startServices(database: Database, bag: DagBag, opts: { slots?: number; zombieThresholdMs?: number } = {}): Promise<Services> {
  await database.db.transaction((tx) => queries.dags.syncDagBag(tx, bag.dags.values(), bag.errors));
  const quiet = () => {};
  const scheduler = await Scheduler.create({ database, dagBag: bag, watchFiles: false, createScheduledRuns: false, zombieThresholdMs: opts.zombieThresholdMs ?? 3_600_000, log: quiet });
  const worker = await Worker.create({ database, dagBag: bag, slots: opts.slots ?? 8, prefetch: 0, heartbeatMs: 200, log: quiet });
  const triggerer = await Triggerer.create({ database, log: quiet });
  return {
    scheduler, worker, triggerer,
    async stop() {
      await triggerer.stop();
      await worker.stop();
      await scheduler.stop();
    },
  };
}

/** Trigger a run of `dag` and wait until it is finished; returns its row and TIs. */
export async function runToEnd(database: Database, dag: Dag, conf: Record<string, unknown> = {}, timeoutMs = 60_000) {
  const { runPk } = await triggerDagRun(database, dag, conf);
  const run = await waitFor(async () => {
    const r = await queries.dagRuns.getRunByPk(database.db, runPk);
    return r && (r.state === 'success' || r.state === 'failed') ? r : null;
  }, `run of ${dag.dagId} to finish`, timeoutMs);
  const tis = await queries.dagRuns.runTaskInstances(database.db, runPk);
  return { run, tis, ti: (taskId: string) => tis.find((t) => t.taskId === taskId)! };
}
