/**
 * The scheduler: keeps the DAG table in step with the DAG folder, creates cron runs (with
 * data intervals and catchup) and dataset-triggered runs (see dataset-runs.ts), starts queued
 * runs within maxActiveRuns, releases retries when their delay ends, and fails or retries
 * zombies. It sleeps until something happens: a NOTIFY, a file change, a cron tick
 * (node-cron), a retry timer or the zombie sweep.
 * Several schedulers may run at once; row locks and unique keys keep them from colliding.
 */
import { watch, type FSWatcher } from 'node:fs';
import cron, { type ScheduledTask } from 'node-cron';
import {
  Channel, notify, queries, evaluateRun, intervalsToRun, RunType, TaskState, JobType, shouldRetry, retryDelayMs, Rerunner,
  ScheduleKind, scheduleKind, nextDueAt, observeRunsClosed,
  type Database, type DagBag, type Dag, type Tx, type RunQueueLimits,
} from '../core/index.ts';
import { createDatasetTriggeredRuns } from './dataset-runs.ts';
import { SchedulerMetrics } from './metrics.ts';

export interface SchedulerOptions {
  database: Database;
  dagBag: DagBag;
  zombieThresholdMs?: number;
  heartbeatMs?: number;
  /** How many catchup runs one pass creates per DAG; the next pass continues. */
  maxRunsPerPass?: number;
  log?: (message: string) => void;
  /** Watch the DAG folder for changes (off for one-shot uses such as `dags test`). */
  watchFiles?: boolean;
  /** Create runs from cron schedules and dataset events (off for one-shot uses such as `dags test`). */
  createScheduledRuns?: boolean;
  maxMapLength?: number;
  /** Deployment-wide run queue limits (default: no global limit). */
  runQueue?: RunQueueLimits;
  /** Serve Prometheus metrics on 127.0.0.1:metricsPort/metrics (0: any free port). */
  metricsPort?: number;
}

export class Scheduler {
  private readonly passes = new Rerunner(() => this.pass(), (err) => this.log(`scheduler pass failed: ${(err as Error).message}`));
  private stopped = false;
  private readonly tickers = new Map<string, { expr: string; task: ScheduledTask }>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly intervalTimers = new Map<string, NodeJS.Timeout>();
  private retryTimer?: NodeJS.Timeout;
  private watcher?: FSWatcher;
  private unlisten?: () => Promise<void>;
  private bagDirty = true;
  private readonly dirtyRuns = new Set<number>();
  private lastFullPass = 0;
  readonly metrics: SchedulerMetrics;

  private constructor(private readonly opts: SchedulerOptions, readonly id: string) {
    this.metrics = new SchedulerMetrics(opts.database, 5000, (m) => this.log(m));
  }

  static async create(opts: SchedulerOptions): Promise<Scheduler> {
    const id = await queries.jobs.registerJob(opts.database.db, JobType.SCHEDULER);
    const s = new Scheduler(opts, id);
    if (opts.metricsPort !== undefined) {
      await s.metrics.serve(opts.metricsPort).catch(async (err: Error) => {
        await queries.jobs.endJob(opts.database.db, id).catch(() => undefined);
        throw new Error(`the scheduler's metrics endpoint could not listen on 127.0.0.1:${opts.metricsPort}: ${err.message}`, { cause: err });
      });
    }
    s.unlisten = await opts.database.listen(Channel.SCHEDULER, (payload) => {
      // "runs:1,2": these runs changed outside a worker (manual state changes, end from trigger).
      if (payload.startsWith('runs:')) for (const pk of payload.slice(5).split(',')) s.dirtyRuns.add(Number(pk));
      void s.wake();
    }, () => {
      s.log('listening again after the database connection was lost; re-evaluating running runs');
      s.lastFullPass = 0;
      void s.wake();
    });
    const zombieMs = opts.zombieThresholdMs ?? 30_000;
    s.every(Math.max(250, Math.floor(zombieMs / 3)), () => s.reapZombies());
    s.every(opts.heartbeatMs ?? 5000, () => queries.jobs.heartbeatJob(opts.database.db, id));
    // The periodic safety net runs even when nothing wakes the scheduler.
    s.every(5000, () => s.wake());
    if (opts.watchFiles !== false) s.watchFolder();
    s.wake();
    return s;
  }

  /** Run a pass now; wake-ups during a pass coalesce into one more pass. */
  wake(): Promise<void> {
    return this.passes.request();
  }

  private async pass(): Promise<void> {
    const { database, dagBag } = this.opts;
    if (this.bagDirty) {
      // Cleared before the sync so a change during it is not lost; restored if the sync fails.
      this.bagDirty = false;
      try {
        await dagBag.refresh();
        await database.db.transaction((tx) => queries.dags.syncDagBag(tx, dagBag.dags.values(), dagBag.errors));
      } catch (err) {
        this.bagDirty = true;
        throw err;
      }
      if (this.opts.createScheduledRuns !== false) this.syncTickers();
    }
    if (this.opts.createScheduledRuns !== false) {
      await this.createScheduledRuns();
      // Workers NOTIFY when they queue dataset events, so this runs within moments of them.
      await createDatasetTriggeredRuns(database, dagBag.dags.values());
    }
    await this.startQueuedRuns();
    await this.releaseRetries();
    if (this.dirtyRuns.size) {
      const pks = [...this.dirtyRuns];
      this.dirtyRuns.clear();
      await this.evaluateRuns(pks);
    }
    // A safety net for anything a crashed process left undecided; cheap, so every few seconds.
    if (Date.now() - this.lastFullPass > 5000) {
      this.lastFullPass = Date.now();
      await this.evaluateRunningRuns();
    }
  }

  private async createScheduledRuns(): Promise<void> {
    const scheduled = [...this.opts.dagBag.dags.values()].filter((d) => d.schedule !== null);
    if (!scheduled.length) return;
    const limit = this.opts.maxRunsPerPass ?? 100;
    await this.opts.database.db.transaction(async (tx) => {
      const rows = await queries.dags.lockDagsForRunCreation(tx, scheduled.map((d) => d.dagId));
      for (const row of rows) {
        if (row.isPaused) continue;
        const dag = this.opts.dagBag.dags.get(row.dagId)!;
        const continuous = scheduleKind(dag.schedule!) === ScheduleKind.CONTINUOUS;
        const due = intervalsToRun({
          schedule: dag.schedule!, timezone: dag.timezone, startDate: dag.startDate!, endDate: dag.endDate,
          catchup: dag.catchup, lastIntervalEnd: row.lastIntervalEnd, now: new Date(), limit,
          activeRuns: continuous ? await queries.dagRuns.activeRunCount(tx, dag.dagId) : undefined,
        });
        for (const interval of due) {
          await queries.dagRuns.createRun(tx, {
            dagId: dag.dagId, runId: `scheduled__${interval.start.toISOString()}`, runType: RunType.SCHEDULED,
            logicalDate: interval.start, dataIntervalStart: interval.start, dataIntervalEnd: interval.end, conf: {}, tags: dag.runTags,
          });
        }
        if (due.length) await queries.dags.setLastIntervalEnd(tx, dag.dagId, due[due.length - 1].end);
        if (due.length === limit) this.passes.requestAgain();
      }
    });
  }

  private async startQueuedRuns(): Promise<void> {
    const { database, dagBag } = this.opts;
    const closed: queries.dagRuns.ClosedRun[] = [];
    await database.db.transaction(async (tx) => {
      const started = await queries.dagRuns.startQueuedRuns(tx, dagBag.dags, this.opts.runQueue ?? { maxConcurrentRuns: -1, runTagLimits: [] });
      for (const run of started) {
        const dag = dagBag.dags.get(run.dagId)!;
        // Roots that are mapped or start from a trigger are decided here; a run may even be done.
        await evaluateRun(tx, run.runPk, dag, null, { maxMapLength: this.opts.maxMapLength });
        await this.closeRunIfDone(tx, run.runPk, dag, closed);
      }
      if (started.length) await notify(tx, Channel.WORKER);
    });
    observeRunsClosed(closed);
  }

  private async releaseRetries(): Promise<void> {
    const { database } = this.opts;
    const released = await database.db.transaction(async (tx) => {
      const n = await queries.taskInstances.releaseDueRetries(tx);
      if (n) await notify(tx, Channel.WORKER);
      return n;
    });
    void released;
    const next = await queries.taskInstances.nextRetryDue(database.db);
    clearTimeout(this.retryTimer);
    if (next && !this.stopped) {
      this.retryTimer = setTimeout(() => void this.wake(), Math.max(0, next.getTime() - Date.now()) + 5);
      this.retryTimer.unref();
    }
  }

  private async evaluateRunningRuns(): Promise<void> {
    await this.evaluateRuns(null);
  }

  private async evaluateRuns(runPks: number[] | null): Promise<void> {
    const { database, dagBag } = this.opts;
    const runs = (await queries.dagRuns.runningRuns(database.db)).filter((r) => runPks === null || runPks.includes(r.id));
    for (const run of runs) {
      const dag = dagBag.dags.get(run.dagId);
      if (!dag) continue;
      const closed: queries.dagRuns.ClosedRun[] = [];
      await database.db.transaction(async (tx) => {
        // The run first, as a manual clear does: a clear committing while this pass reads the
        // TIs would otherwise see the run closed over TIs it just reset.
        await tx.execute(queries.dagRuns.lockRunsStatement([run.id]));
        const r = await evaluateRun(tx, run.id, dag, null, { maxMapLength: this.opts.maxMapLength });
        if (r.scheduled) await notify(tx, Channel.WORKER);
        await this.closeRunIfDone(tx, run.id, dag, closed);
      });
      observeRunsClosed(closed);
    }
  }

  /** Running TIs whose worker stopped heartbeating are retried or failed, as a crash would be. */
  private async reapZombies(): Promise<void> {
    const { database, dagBag } = this.opts;
    const threshold = this.opts.zombieThresholdMs ?? 30_000;
    const closed: queries.dagRuns.ClosedRun[] = [];
    const retriedAny = await database.db.transaction(async (tx) => {
      const zombies = await queries.taskInstances.lockZombies(tx, threshold);
      if (!zombies.length) return false;
      const finishedRuns = new Map<number, { dag: Dag; taskIds: Set<string> }>();
      let retried = false;
      let queuedCallbacks = false;
      for (const z of zombies) {
        const dag = dagBag.dags.get(z.dagId);
        const op = dag?.tasks.get(z.taskId);
        const policy = op && { retries: op.options.retries, retryDelayMs: op.options.retryDelay, retryExponentialBackoff: op.options.retryExponentialBackoff, maxRetryDelayMs: op.options.maxRetryDelay };
        const retry = policy ? shouldRetry(policy, z.tryNumber) : false;
        const delay = retry && policy ? retryDelayMs(policy, z.tryNumber, `${z.dagId}#${z.taskId}#zombie#${z.tryNumber}`) : 0;
        const message = `ZombieTaskError: worker ${z.workerId ?? '(unknown)'} stopped heartbeating for over ${threshold / 1000}s while running this task`;
        await this.finishZombie(tx, z.id, retry ? TaskState.UP_FOR_RETRY : TaskState.FAILED, message, retry ? new Date(Date.now() + delay) : null);
        this.log(`${z.dagId}.${z.taskId} try ${z.tryNumber}: ${message}; ${retry ? 'will retry' : 'failed'}`);
        // Its callback runs on a worker, which has the DAG loaded; queued with the state change.
        if (retry ? op?.options.onRetryCallback : op?.options.onFailureCallback) {
          await queries.callbacks.enqueueCallbacks(tx, [{ scope: 'task', kind: retry ? 'retry' : 'failure', dagId: z.dagId, runPk: z.runPk, tiId: z.id, tryNumber: z.tryNumber, error: message }]);
          queuedCallbacks = true;
        }
        if (retry) retried = true;
        else if (dag) {
          const entry = finishedRuns.get(z.runPk) ?? { dag, taskIds: new Set<string>() };
          for (const d of op?.downstreamIds ?? []) entry.taskIds.add(d);
          finishedRuns.set(z.runPk, entry);
        }
      }
      for (const [runPk, { dag, taskIds }] of finishedRuns) {
        await evaluateRun(tx, runPk, dag, taskIds, { maxMapLength: this.opts.maxMapLength });
        await this.closeRunIfDone(tx, runPk, dag, closed);
      }
      if (queuedCallbacks) await notify(tx, Channel.WORKER, queries.callbacks.CALLBACKS_PAYLOAD);
      // Reaped TIs free their pool slots even when nothing new was scheduled.
      await notify(tx, Channel.WORKER);
      return retried;
    });
    observeRunsClosed(closed);
    if (retriedAny) void this.wake();
  }

  /** Close the run if it is done, noting it in `closed` for the run duration metric (observed once the transaction commits). */
  private async closeRunIfDone(tx: Tx, runPk: number, dag: Dag, closed: queries.dagRuns.ClosedRun[]): Promise<void> {
    const run = await queries.dagRuns.closeRunIfDone(tx, runPk, dag);
    if (run) closed.push(run);
  }

  private async finishZombie(tx: Tx, tiId: number, state: TaskState, error: string, nextRetryAt: Date | null): Promise<void> {
    const { database } = this.opts;
    const { sql } = await import('drizzle-orm');
    await tx.execute(sql`update task_instances set state = ${state}, error = ${error}, end_date = now(),
      duration = extract(epoch from now() - start_date), next_retry_at = ${nextRetryAt?.toISOString() ?? null}::timestamptz
      where id = ${tiId} and state = ${TaskState.RUNNING}`);
    await queries.taskInstances.recordHistory(tx, [tiId]);
    const [ti] = await database.rows<{ try_number: number }>(sql`select try_number from task_instances where id = ${tiId}`, tx);
    await queries.logs.writeLogs(tx, [{ tiId, tryNumber: Number(ti.try_number), ts: new Date(), level: 'error', message: error }]);
  }

  /**
   * node-cron ticks wake the scheduler at each DAG's fire times; run creation itself is idempotent.
   * Duration and @once schedules get a timer instead; @continuous wakes on its run's end (NOTIFY).
   */
  private syncTickers(): void {
    const wanted = new Map<string, Dag>();
    this.syncIntervalTimers();
    for (const d of this.opts.dagBag.dags.values()) if (d.schedule && scheduleKind(d.schedule) === ScheduleKind.CRON) wanted.set(d.dagId, d);
    for (const [id, t] of this.tickers) {
      if (wanted.get(id)?.schedule !== t.expr) {
        void t.task.destroy();
        this.tickers.delete(id);
      }
    }
    for (const [id, d] of wanted) {
      if (this.tickers.has(id)) continue;
      const task = cron.schedule(d.schedule!, () => void this.wake(), { timezone: d.timezone, name: `updraft:${id}` });
      this.tickers.set(id, { expr: d.schedule!, task });
    }
  }

  private syncIntervalTimers(): void {
    for (const t of this.intervalTimers.values()) clearTimeout(t);
    this.intervalTimers.clear();
    for (const d of this.opts.dagBag.dags.values()) if (d.schedule && d.startDate) this.armIntervalTimer(d.dagId, d.schedule, d.startDate);
  }

  private armIntervalTimer(dagId: string, schedule: string, startDate: Date): void {
    const at = nextDueAt(schedule, startDate, new Date());
    if (!at || this.stopped) return;
    // setTimeout holds at most about 24.8 days; a longer wait re-arms on the way.
    const t = setTimeout(() => {
      void this.wake();
      this.armIntervalTimer(dagId, schedule, startDate);
    }, Math.min(2 ** 31 - 1, Math.max(0, at.getTime() - Date.now()) + 5));
    t.unref();
    this.intervalTimers.set(dagId, t);
  }

  private watchFolder(): void {
    let debounce: NodeJS.Timeout | undefined;
    try {
      this.watcher = watch(this.opts.dagBag.folder, { recursive: true }, () => {
        clearTimeout(debounce);
        debounce = setTimeout(() => {
          this.bagDirty = true;
          void this.wake();
        }, 150);
      });
    } catch (err) {
      this.log(`cannot watch ${this.opts.dagBag.folder} (${(err as Error).message}); DAG changes are picked up every 30s`);
      this.every(30_000, async () => {
        this.bagDirty = true;
        await this.wake();
      });
    }
  }

  private every(ms: number, fn: () => Promise<unknown>): void {
    const t = setInterval(() => {
      if (!this.stopped) fn().catch((err) => this.log(`${(err as Error).message}`));
    }, ms);
    t.unref();
    this.timers.push(t);
  }

  private log(message: string): void {
    (this.opts.log ?? ((m: string) => process.stderr.write(`[scheduler] ${m}\n`)))(message);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.passes.stop();
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.retryTimer);
    for (const t of this.intervalTimers.values()) clearTimeout(t);
    for (const t of this.tickers.values()) await t.task.destroy();
    this.tickers.clear();
    this.watcher?.close();
    await this.unlisten?.();
    await this.passes.idle;
    await queries.jobs.endJob(this.opts.database.db, this.id).catch(() => undefined);
    await this.metrics.close();
  }
}
