/**
 * One run, in-process, to completion: the engine behind `dags test` and `tasks test`. It uses
 * a throwaway in-memory PGlite database and the real scheduler and worker, so what passes
 * here is what runs in production.
 */
import { eq } from 'drizzle-orm';
import { queries, schema, triggerDagRun, Worker, RunState, TaskState, type Dag, type DagBag, type Database, type Secrets } from '../core/index.ts';
import { Scheduler } from '../scheduler/index.ts';
import { Triggerer } from '../triggerer/index.ts';

export interface LocalRunResult {
  dagId: string;
  runId: string;
  runPk: number;
  state: string;
  startDate: Date | null;
  endDate: Date | null;
  taskInstances: {
    taskId: string; mapIndex: number; state: string; tryNumber: number; id: number; error: string | null;
    startDate: Date | null; endDate: Date | null; duration: number | null;
  }[];
}

export async function runDagLocally(database: Database, bag: DagBag, dag: Dag, conf: Record<string, unknown>,
  opts: { onlyTask?: string; onProgress?: (line: string) => void; secrets?: Secrets } = {}): Promise<LocalRunResult> {
  await database.db.transaction((tx) => queries.dags.syncDagBag(tx, bag.dags.values(), bag.errors));
  // A test run ignores isPausedUponCreation: the database is this run's alone.
  await queries.dags.setPaused(database.db, dag.dagId, false);
  const { runPk, runId } = await triggerDagRun(database, dag, conf);
  const scheduler = await Scheduler.create({ database, dagBag: bag, watchFiles: false, createScheduledRuns: false, zombieThresholdMs: 3_600_000 });
  if (opts.onlyTask) {
    await scheduler.wake();
    await database.db.update(schema.taskInstances).set({ state: TaskState.SKIPPED })
      .where(eq(schema.taskInstances.runPk, runPk));
    await database.db.update(schema.taskInstances).set({ state: TaskState.SCHEDULED, scheduledAt: new Date() })
      .where(eq(schema.taskInstances.taskId, opts.onlyTask));
  }
  const worker = await Worker.create({ database, dagBag: bag, slots: 32, secrets: opts.secrets });
  // Deferring tasks run in-process too: a triggerer on the same throwaway database.
  const triggerer = await Triggerer.create({ database, secrets: opts.secrets });
  const seen = new Map<number, string>();
  try {
    for (;;) {
      const run = await queries.dagRuns.getRunByPk(database.db, runPk);
      const tis = await queries.dagRuns.runTaskInstances(database.db, runPk);
      // Within one snapshot, report what finished before what started, so the log reads in order.
      const finishedFirst = [...tis].sort((a, b) => Number(a.endDate === null) - Number(b.endDate === null));
      for (const ti of finishedFirst) {
        if (seen.get(ti.id) !== ti.state) {
          seen.set(ti.id, ti.state);
          if (ti.state !== TaskState.NONE) opts.onProgress?.(`${ti.taskId}${ti.mapIndex >= 0 ? `[${ti.mapIndex}]` : ''}: ${ti.state}${ti.tryNumber > 1 ? ` (try ${ti.tryNumber})` : ''}`);
        }
      }
      const onlyDone = opts.onlyTask && tis.some((t) => t.taskId === opts.onlyTask && ['success', 'failed', 'skipped', 'up_for_retry'].includes(t.state));
      if (run && (run.state === RunState.SUCCESS || run.state === RunState.FAILED || onlyDone)) {
        const state = opts.onlyTask ? (tis.find((t) => t.taskId === opts.onlyTask)!.state === 'success' ? 'success' : 'failed') : run.state;
        // The run's callbacks are queued as it closes; let this worker run them before it stops.
        await queries.callbacks.waitForQueue(database.db, 10_000);
        return {
          dagId: dag.dagId, runId, runPk, state, startDate: run.startDate, endDate: run.endDate,
          taskInstances: tis.map((t) => ({
            taskId: t.taskId, mapIndex: t.mapIndex, state: t.state, tryNumber: t.tryNumber, id: t.id, error: t.error,
            startDate: t.startDate, endDate: t.endDate, duration: t.duration,
          })),
        };
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  } finally {
    await triggerer.stop();
    await worker.stop();
    await scheduler.stop();
  }
}
