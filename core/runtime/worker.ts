/**
 * The worker: claims scheduled TIs (FOR UPDATE SKIP LOCKED, woken by NOTIFY), runs up to
 * `slots` of them at once (async ones on this loop, sync ones in threads), heartbeats, and
 * writes results in batches. Each batch's transaction also schedules the finished TIs'
 * downstream tasks and closes finished runs, so the next task starts without waiting for a
 * scheduler loop.
 *
 * Prefetch: while the TIs it runs are short (a recent mean under 100 ms), the worker claims
 * more than its slots and starts one the moment a slot frees instead of after the next batch
 * commits (a few ms each time, which at 50 ms per TI is a tenth of the slot). Claims arrive
 * with batches, so the TIs held ahead must cover what the slots finish while a claim is on its
 * way, up to two batch round trips: the worker holds 2.5 times its recent batch size ahead, at
 * least `ceil(slots / 4)` and at most `slots`. A prefetched TI is claimed like any other (state
 * running, this worker's, heartbeated); it waits at most about one short TI's time; on
 * shutdown it is handed back without a try counted. Long tasks gain nothing from it, so it
 * switches off by itself.
 */
import { and, eq, or, type SQL } from 'drizzle-orm';

const FREED_PREFIX = 'from:';
/** Prefetch while the recent mean TI execution time is below this. */
const PREFETCH_BELOW_MS = 100;
/**
 * With many short TIs executing, results arrive every few milliseconds: gather them this long
 * per batch, for fewer transactions (each one a claim, a commit and its fsync). Measured with 64
 * slots of 50 ms SFTP downloads on 2 cores, three runs each way, alternated: batches of 16
 * instead of 10 to 12, and 17,000 TIs in 14.4 to 15.2 s instead of 16.0 to 16.6 s. Their slots
 * do not wait for it (prefetched TIs take them). With few TIs executing, as in a chain, or TIs
 * of a few milliseconds (a deferral, a no-op), for which 5 ms would be more than the TI itself,
 * a result still goes out at once.
 */
const GATHER_MS = 5;
const GATHER_ABOVE_MS = 4 * GATHER_MS;
import { Channel, dbErrorMessage, isRequireFailure, isTransientDbError, notifySql, type Database } from '../db/client.ts';
import { xcom } from '../db/schema.ts';
import { claimScheduled, claimStatements, finishTisStatement, handBackTis, heartbeatTis, runContext, toClaimed, type ClaimedTi, type TiFinish } from '../db/queries/task-instances.ts';
import { writeXComsStatement, type XComWrite } from '../db/queries/xcom.ts';
import { writeRenderedStatement } from '../db/queries/rendered.ts';
import { writeLogsStatements, type LogWrite } from '../db/queries/logs.ts';
import { appendLogFiles, taskLogSettings } from './log-store.ts';
import { writeDatasetEventsStatements, type DatasetEventWrite } from '../db/queries/datasets.ts';
import { closedRunOf, finishRunIfDoneStatement, lockRunsStatement } from '../db/queries/dag-runs.ts';
import { registerJob, heartbeatJob, endJob } from '../db/queries/jobs.ts';
import { upsertTriggerStatement } from '../db/queries/triggers.ts';
import { KwargsCodec } from '../triggers/secrets.ts';
import type { DagBag } from './dag-bag.ts';
import { evaluateRun, hasPastDependencies, statesFromProbe, statesProbe, DEFAULT_MAX_MAP_LENGTH } from './dependencies.ts';
import { skipTisStatement, wakeNextRunsStatement } from '../db/queries/run-dependencies.ts';
import type { Dag } from '../authoring/dag.ts';
import { executeTi, type RunInfo, type TaskOutcome } from './task-runner.ts';
import type { Lookups } from './task-context.ts';
import type { Secrets } from '../connections/secrets.ts';
import { defaultSecrets } from '../connections/setup.ts';
import { SyncPool } from './sync-pool.ts';
import { Batcher } from './batcher.ts';
import { Rerunner } from './rerunner.ts';
import { CallbackQueue } from './callback-queue.ts';
import { createDagRunControl } from './dag-run-control.ts';
import { CALLBACKS_PAYLOAD } from '../db/queries/callbacks.ts';
import { installConsoleCapture, type LogLine } from './task-log.ts';
import { JobType, TaskState } from '../model/states.ts';
import { RESCHEDULE_METHOD } from '../authoring/reschedule.ts';
import { WorkerMetrics } from './worker-metrics.ts';
import { observeRunsClosed } from '../metrics/process-metrics.ts';

export interface WorkerOptions {
  database: Database;
  dagBag: DagBag;
  slots?: number;
  queues?: string[];
  heartbeatMs?: number;
  /** Threads for sync tasks; defaults to min(slots, cores, at least 2). */
  syncThreads?: number;
  /** Seals trigger kwargs at rest; defaults to UPDRAFT_SECRET_KEY from the environment. */
  codec?: KwargsCodec;
  /** Longest list a task may produce for a mapped consumer (default 10,000). */
  maxMapLength?: number;
  /** TIs claimed beyond the slots. Default: `ceil(slots / 4)` while tasks are short, else none; 0 turns it off. */
  prefetch?: number;
  /** Connections and variables for tasks; defaults to the environment, then the database. */
  secrets?: Secrets;
  /** Serve Prometheus metrics on 127.0.0.1:metricsPort/metrics (0: any free port). */
  metricsPort?: number;
  log?: (message: string) => void;
}

export class Worker {
  readonly slots: number;
  private readonly queues: string[];

  /** The most TIs that executed at once so far (slots in use; prefetched TIs hold none), and how many started. */
  get usage(): { peakExecuting: number; started: number } {
    return { ...this.stats };
  }
  private readonly running = new Map<number, Promise<void>>();
  /** Claimed (prefetched) TIs waiting for a slot. */
  private readonly ready: ClaimedTi[] = [];
  /** TIs executing now (running minus those whose results wait for their batch). */
  private executing = 0;
  /** The most TIs that executed at once (slots in use), and how many TIs ran in all. */
  private stats = { peakExecuting: 0, started: 0 };
  /** Mean execution time of recent TIs (moving average), which decides whether to prefetch. */
  private recentMs = Infinity;
  /** Mean size of recent result batches: what the slots finish during one batch round trip. */
  private recentBatch = 0;
  /** A fixed prefetch, or null for the default (on while tasks are short). */
  private readonly prefetchLimit: number | null;
  /** Per running TI: aborted when the TI is handed back at shutdown. */
  private readonly aborts = new Map<number, AbortController>();
  private readonly results: Batcher<TaskOutcome>;
  private readonly runCache = new Map<number, RunInfo>();
  private readonly syncPool: SyncPool;
  private readonly codec: KwargsCodec;
  private readonly lookups: Lookups;
  /** Slots promised to claims in flight, so two claims never overfill the worker. */
  private reserved = 0;
  /** The claim loop; stop() waits for a claim in flight and the TIs it is about to start. */
  private readonly claims = new Rerunner(() => this.claimLoop(), (err) => this.log(`claim failed: ${(err as Error).message}`));
  /**
   * Set by every wake-up and cleared when a batch write begins. A wake-up that arrives while a
   * batch holds the free slots finds none and returns; the write then claims again for it,
   * since its own claim may have read the database before that wake-up's rows committed.
   */
  private woken = false;
  private stopped = false;
  private heartbeat?: NodeJS.Timeout;
  private unlisten?: () => Promise<void>;
  private lastBagRefresh = 0;
  /** Callbacks the scheduler queued (zombies, finished runs), run here. */
  private callbacks!: CallbackQueue;
  /** Completed TIs since start (for progress reporting). */
  completed = 0;
  readonly metrics = new WorkerMetrics(() => ({ slots: this.slots, executing: this.executing, prefetched: this.ready.length }));

  private constructor(private readonly opts: WorkerOptions, readonly id: string) {
    this.slots = opts.slots ?? 16;
    this.prefetchLimit = opts.prefetch ?? null;
    this.queues = opts.queues ?? ['default'];
    this.syncPool = new SyncPool(opts.syncThreads ?? Math.max(2, Math.min(this.slots, 4)));
    this.codec = opts.codec ?? KwargsCodec.fromEnv();
    const secrets = opts.secrets ?? defaultSecrets(opts.database).secrets;
    this.lookups = { connection: (id) => secrets.connection(id), variable: (key) => secrets.variable(key), dagRuns: createDagRunControl(opts.database, opts.dagBag) };
    // A write that fails for the database being away leaves the TIs running (heartbeats
    // continue) and is retried with them; a result the database refuses fails its TI alone.
    this.results = new Batcher((batch) => this.flush(batch), {
      gatherMs: () => (this.recentMs >= GATHER_ABOVE_MS && this.recentMs < PREFETCH_BELOW_MS && this.executing >= Math.max(4, this.slots / 4) ? GATHER_MS : 0),
      onError: (err, n) => this.log(`could not record ${n} result(s), retrying: ${dbErrorMessage(err)}`),
      poisoned: (o, err) => this.unrecordable(o, err),
      dropped: (o, err) => {
        // Not even the failure could be written: stop heartbeating it so it is reaped as a zombie.
        this.running.delete(o.ti.id);
        this.log(`could not record the failure of ${label(o.ti)} either; it will be reaped as a zombie: ${dbErrorMessage(err)}`);
      },
    });
  }

  static async create(opts: WorkerOptions): Promise<Worker> {
    installConsoleCapture();
    const id = await registerJob(opts.database.db, JobType.WORKER);
    const w = new Worker(opts, id);
    if (opts.metricsPort !== undefined) {
      await w.metrics.serve(opts.metricsPort).catch(async (err: Error) => {
        await w.syncPool.close();
        await endJob(opts.database.db, id).catch(() => undefined);
        throw new Error(`the worker's metrics endpoint could not listen on 127.0.0.1:${opts.metricsPort}: ${err.message}`, { cause: err });
      });
    }
    w.callbacks = new CallbackQueue(opts.database, opts.dagBag, w.lookups, id, (m) => w.log(m));
    // Our own "slots freed" notices are skipped: the same transaction already claimed for us.
    w.unlisten = await opts.database.listen(Channel.WORKER, (payload) => {
      if (payload === CALLBACKS_PAYLOAD) w.callbacks.wake();
      else if (payload !== `${FREED_PREFIX}${w.id}`) w.wake();
    }, () => {
      w.log('listening again after the database connection was lost; looking for work');
      w.wake();
    });
    w.heartbeat = setInterval(() => void w.beat(), opts.heartbeatMs ?? 5000);
    w.heartbeat.unref();
    w.wake();
    w.callbacks.wake();
    return w;
  }

  get busy(): number {
    return this.running.size;
  }

  /** Claim as many TIs as there are free slots; concurrent wake-ups coalesce. */
  wake(): void {
    this.woken = true;
    void this.claims.request();
  }

  private async claimLoop(): Promise<void> {
    while (!this.stopped) {
      const free = this.freeSlots();
      if (free <= 0) return;
      let claimed: ClaimedTi[];
      this.reserved += free;
      try {
        await this.maybeRefreshBag();
        const began = performance.now();
        claimed = await claimScheduled(this.opts.database, this.id, this.queues, free);
        this.metrics.claimSeconds.observe((performance.now() - began) / 1000);
        this.metrics.claimSize.observe({ via: 'claim' }, claimed.length);
      } finally {
        this.reserved -= free;
      }
      if (!claimed.length) return;
      await this.startAll(claimed);
      if (claimed.length < free) return;
    }
  }

  /**
   * Slots (and prefetch places) neither holding a TI nor promised to a claim in flight; `writing`
   * TIs are in the batch being written, and count as gone. A TI whose result waits for a later
   * batch still counts as the worker's (it is running in the database) unless the default
   * prefetch is on: then it holds a prefetch place instead of a slot, so that short tasks
   * finishing faster than their batches commit do not leave slots empty while they wait.
   */
  private freeSlots(writing = 0): number {
    const held = this.running.size - writing;
    const waiting = held - this.executing;
    const prefetch = this.prefetchLimit ?? (this.recentMs < PREFETCH_BELOW_MS
      ? Math.min(this.slots, Math.max(Math.ceil(this.slots / 4), Math.ceil(2.5 * this.recentBatch))) + waiting
      : 0);
    return this.slots + prefetch - held - this.ready.length - this.reserved;
  }

  /**
   * Start claimed TIs. Never throws: they are ours once the claim committed, so a failed read
   * of their runs is retried by each TI's own job instead of failing the claim or the batch.
   */
  private async startAll(claimed: ClaimedTi[]): Promise<void> {
    await this.loadRuns(claimed.map((c) => c.runPk)).catch((err) => this.log(`loading run context failed, retrying per TI: ${dbErrorMessage(err)}`));
    for (const ti of claimed) {
      if (ti.schedulingDelayS !== null) this.metrics.schedulingDelay.observe(Math.max(0, ti.schedulingDelayS));
      this.start(ti);
    }
  }

  private async runInfo(runPk: number): Promise<RunInfo> {
    for (let attempt = 1; ; attempt++) {
      const info = this.runCache.get(runPk);
      if (info) return info;
      try {
        await this.loadRuns([runPk]);
      } catch (err) {
        if (attempt >= 8 || !isTransientDbError(err)) throw err;
        await new Promise((r) => setTimeout(r, Math.min(10_000, 250 * 2 ** attempt)));
        continue;
      }
      if (!this.runCache.has(runPk)) throw new Error(`run #${runPk} of this TI no longer exists`);
    }
  }

  private start(ti: ClaimedTi): void {
    if (this.executing >= this.slots) {
      this.ready.push(ti);
      return;
    }
    this.executing++;
    this.stats.started++;
    if (this.executing > this.stats.peakExecuting) this.stats.peakExecuting = this.executing;
    const began = performance.now();
    const abort = new AbortController();
    this.aborts.set(ti.id, abort);
    const job = (async () => {
      let outcome: TaskOutcome;
      try {
        const dag = await this.dagFor(ti.dagId);
        outcome = await executeTi(ti, await this.runInfo(ti.runPk), dag, { database: this.opts.database, lookups: this.lookups, syncPool: this.syncPool, maxMapLength: this.opts.maxMapLength ?? DEFAULT_MAX_MAP_LENGTH, signal: abort.signal });
      } catch (err) {
        outcome = {
          ti, state: TaskState.FAILED, result: undefined, pushes: [], endDate: new Date(), nextRetryAt: null, deferral: null,
          error: `${(err as Error).name}: ${(err as Error).message}`,
          logs: [{ ts: new Date(), level: 'error', message: (err as Error).stack ?? String(err) }],
        };
      }
      this.aborts.delete(ti.id);
      this.executing--;
      const ms = performance.now() - began;
      this.recentMs = this.recentMs === Infinity ? ms : this.recentMs * 0.9 + ms * 0.1;
      const next = this.stopped ? undefined : this.ready.shift();
      if (next) this.start(next);
      this.results.push(outcome);
    })();
    this.running.set(ti.id, job);
  }

  /**
   * Write a batch of outcomes and, in the same transaction, claim TIs for the slots they free
   * (one commit instead of two on the hot path, as a job queue's "complete and fetch next").
   */
  private async flush(batch: TaskOutcome[]): Promise<void> {
    const free = this.stopped ? 0 : Math.max(0, this.freeSlots(batch.length));
    this.woken = false;
    this.reserved += free;
    let claimed: ClaimedTi[] = [];
    const began = performance.now();
    try {
      claimed = await this.writeAndClaim(batch, free, false).catch((err: unknown) => {
        // A TI was no longer ours (reaped as a zombie while it ran): again, skipping such TIs.
        if (isRequireFailure(err)) return this.writeAndClaim(batch, free, true);
        throw err;
      });
    } finally {
      this.reserved -= free;
    }
    this.metrics.batchSeconds.observe((performance.now() - began) / 1000);
    this.metrics.batchSize.observe(batch.length);
    this.recentBatch = this.recentBatch * 0.9 + batch.length * 0.1;
    if (free > 0) this.metrics.claimSize.observe({ via: 'batch' }, claimed.length);
    for (const o of batch) this.running.delete(o.ti.id);
    this.completed += batch.length;
    if (claimed.length) await this.startAll(claimed);
    // Work may remain beyond this batch (or was scheduled by it for another queue's worker).
    if ((claimed.length === free || this.woken) && this.freeSlots() > 0) this.wake();
  }

  /**
   * The batch's transaction, pipelined: statements go out together and the worker waits only
   * where it needs an answer. Lock the runs, upsert the triggers of deferring TIs (their ids
   * are needed: one round trip), finish the TIs, store XComs and logs and read which states the
   * downstream tasks' upstreams are in; when that read decides something, apply it step by step
   * (another round trip or more); then close runs that are done, claim and commit. A batch with
   * nothing to decide is one round trip in all.
   *
   * The finish fails the transaction (updraft_require) unless every TI is still this worker's,
   * since what follows is sent before its answer. With `verifyFinish`, the worker waits for the
   * finish instead and carries on with the TIs it applied to, leaving the others alone.
   */
  private async writeAndClaim(batch: TaskOutcome[], free: number, verifyFinish: boolean): Promise<ClaimedTi[]> {
    const { database, dagBag } = this.opts;
    return database.pipelined(async (pipe) => {
      const statements: SQL[] = [lockRunsStatement([...new Set(batch.map((o) => o.ti.runPk))])];
      const triggerIds = new Map<number, number>();
      const deferring = batch.filter((o) => o.deferral);
      if (deferring.length) {
        const rows = await pipe.send([...statements, ...deferring.map((o) => {
          const { name, kwargs } = o.deferral!.trigger;
          return upsertTriggerStatement(pipe.ex, name, this.codec.seal(kwargs), this.codec.hash(name, kwargs));
        })]);
        deferring.forEach((o, i) => triggerIds.set(o.ti.id, Number(rows[i + 1][0].id)));
        statements.length = 0;
      }
      statements.push(finishTisStatement(this.id, batch.map((o) => this.finishOf(o, triggerIds.get(o.ti.id) ?? null)), !verifyFinish));
      let done = batch;
      if (verifyFinish) {
        const read = await pipe.send(statements);
        const applied = new Set(read[read.length - 1].map((r) => Number(r.id)));
        done = batch.filter((o) => applied.has(o.ti.id));
        const refused = batch.filter((o) => !applied.has(o.ti.id));
        if (refused.length) {
          this.log(`${refused.length} result(s) refused, the TIs are no longer this worker's (reaped as zombies while it was unreachable?): `
            + refused.slice(0, 5).map((o) => `${label(o.ti)} try ${o.ti.tryNumber}`).join(', ') + (refused.length > 5 ? ', …' : ''));
        }
        statements.length = 0;
      }
      const retried = done.filter((o) => o.ti.tryNumber > 1 && o.ti.nextMethod === null);
      if (retried.length) statements.push(this.clearXComsStatement(retried));
      const { xcoms, logs, events } = this.rowsOf(done);
      const xcomStatement = writeXComsStatement(xcoms);
      if (xcomStatement) statements.push(xcomStatement);
      const renderedStatement = writeRenderedStatement(pipe.ex, done.filter((o) => o.rendered).map((o) => ({ tiId: o.ti.id, tryNumber: o.ti.tryNumber, fields: o.rendered! })));
      if (renderedStatement) statements.push(renderedStatement);
      const logFolder = taskLogSettings().folder;
      if (logFolder) await appendLogFiles(logFolder, logs, done.map((o) => o.ti));
      else statements.push(...writeLogsStatements(pipe.ex, logs));
      // A success and its dataset events commit together, or neither does.
      statements.push(...writeDatasetEventsStatements(events));

      // Per run: the tasks downstream of what finished, and a read of their upstreams' states.
      const runs = new Map<number, { dag: Dag; downstream: Set<string>; probe: string[]; at: number }>();
      for (const o of done) {
        if (o.state === TaskState.DEFERRED || o.state === TaskState.UP_FOR_RETRY || o.state === TaskState.UP_FOR_RESCHEDULE) continue;
        const dag = dagBag.dags.get(o.ti.dagId);
        if (!dag) continue;
        const run = runs.get(o.ti.runPk) ?? { dag, downstream: new Set<string>(), probe: [], at: -1 };
        for (const d of dag.tasks.get(o.ti.taskId)?.downstreamIds ?? []) run.downstream.add(d);
        if (o.skipDownstream?.length) {
          // Skipped before the probe reads them, so the cascade below starts from the skips.
          statements.push(skipTisStatement(o.ti.runPk, o.skipDownstream, o.ti.mapIndex));
          for (const id of o.skipDownstream) for (const d of dag.tasks.get(id)?.downstreamIds ?? []) run.downstream.add(d);
        }
        runs.set(o.ti.runPk, run);
      }
      const pastWaiters = [...runs].filter(([, r]) => hasPastDependencies(r.dag)).map(([pk]) => pk);
      if (pastWaiters.length) statements.push(wakeNextRunsStatement(pastWaiters));
      for (const [runPk, run] of runs) {
        if (!run.downstream.size) continue;
        const probe = new Set(run.downstream);
        for (const d of run.downstream) for (const up of run.dag.tasks.get(d)?.upstreamIds ?? []) probe.add(up);
        run.probe = [...probe];
        run.at = statements.length;
        statements.push(statesProbe(runPk, run.probe));
      }

      let scheduled = 0;
      const closing: number[] = [];
      if ([...runs.values()].some((r) => r.at >= 0)) {
        const read = await pipe.send(statements);
        statements.length = 0;
        for (const [runPk, run] of runs) {
          const next = run.at < 0 ? 0 : (await evaluateRun(pipe.ex, runPk, run.dag, run.downstream,
            { maxMapLength: this.opts.maxMapLength }, statesFromProbe(run.probe, read[run.at]))).scheduled;
          scheduled += next;
          // A run that just scheduled a TI cannot be finished.
          if (next === 0) closing.push(runPk);
        }
      } else {
        closing.push(...runs.keys());
      }

      const closeAt = new Map<number, number>();
      for (const runPk of closing) {
        closeAt.set(runPk, statements.length);
        statements.push(finishRunIfDoneStatement(runPk, runs.get(runPk)!.dag, Channel.SCHEDULER));
      }
      // Finished TIs free pool and limit slots that TIs on other workers (or queues) may wait for.
      if (scheduled || done.some((o) => o.state !== TaskState.DEFERRED)) statements.push(notifySql(Channel.WORKER, `${FREED_PREFIX}${this.id}`));
      // The scheduler releases retries and reschedules when they are due: it arms its timer.
      if (done.some((o) => o.state === TaskState.UP_FOR_RETRY || o.state === TaskState.UP_FOR_RESCHEDULE)) statements.push(notifySql(Channel.SCHEDULER));
      const parked = new Set(done.filter((o) => o.deferral).map((o) => triggerIds.get(o.ti.id)!));
      if (parked.size) statements.push(notifySql(Channel.TRIGGERER, [...parked].join(',')));
      if (free > 0) statements.push(...claimStatements(this.id, this.queues, free));
      const results = await pipe.send(statements, { commit: true });
      for (const [runPk, at] of closeAt) {
        if (!results[at].length) continue;
        this.runCache.delete(runPk);
        observeRunsClosed([closedRunOf(results[at][0])]);
      }
      return free > 0 ? toClaimed(results[results.length - 1]) : [];
    });
  }

  /** What to write instead of a result the database refused: the TI fails, saying why. */
  private unrecordable(o: TaskOutcome, err: unknown): TaskOutcome {
    const reason = dbErrorMessage(err);
    const error = `ResultNotStoredError: the database refused what ${label(o.ti)} produced in try ${o.ti.tryNumber} `
      + `(it ended ${o.state}): ${reason}. Its return value, XComs and log lines of this try were not stored; `
      + 'check the values the task returns, pushes or defers with.';
    this.log(error);
    return {
      ti: o.ti, state: TaskState.FAILED, result: undefined, pushes: [], endDate: o.endDate, nextRetryAt: null, deferral: null,
      error, logs: [{ ts: new Date(), level: 'error', message: error }],
    };
  }

  /** The finishTis item for an outcome (triggerId: the trigger a deferring TI waits on). */
  private finishOf(o: TaskOutcome, triggerId: number | null): TiFinish {
    const d = o.deferral;
    const finished = o.state !== TaskState.DEFERRED;
    if (o.reschedule) {
      return {
        id: o.ti.id, tryNumber: o.ti.tryNumber, state: o.state, error: null, nextRetryAt: null, endDate: o.endDate,
        duration: (o.endDate.getTime() - o.ti.startDate.getTime()) / 1000,
        nextMethod: RESCHEDULE_METHOD, nextKwargs: { kwargs: o.reschedule.kwargs }, rescheduleDate: o.reschedule.at,
      };
    }
    return {
      id: o.ti.id, tryNumber: o.ti.tryNumber, state: o.state, error: o.error, nextRetryAt: o.nextRetryAt,
      endDate: finished ? o.endDate : null,
      duration: finished ? (o.endDate.getTime() - o.ti.startDate.getTime()) / 1000 : null,
      triggerId,
      nextMethod: d?.method ?? null,
      // Events added before a deferral wait in next_kwargs for the try to succeed.
      nextKwargs: d ? { kwargs: d.kwargs, ...(o.outletEvents?.length ? { outletEvents: o.outletEvents } : {}) } : null,
      triggerTimeout: d?.triggerTimeout ?? null,
    };
  }

  /** A fresh try (not a resume) replaces what earlier tries stored. */
  private clearXComsStatement(retried: TaskOutcome[]): SQL {
    return this.opts.database.db.delete(xcom)
      .where(or(...retried.map((o) => and(eq(xcom.runPk, o.ti.runPk), eq(xcom.taskId, o.ti.taskId), eq(xcom.mapIndex, o.ti.mapIndex))))).getSQL();
  }

  /** XCom, log and dataset event rows for outcomes whose finish applied. */
  private rowsOf(done: TaskOutcome[]): { xcoms: XComWrite[]; logs: LogWrite[]; events: DatasetEventWrite[] } {
    const xcoms: XComWrite[] = [];
    const logs: LogWrite[] = [];
    const events: DatasetEventWrite[] = [];
    for (const o of done) {
      const at = { runPk: o.ti.runPk, taskId: o.ti.taskId, mapIndex: o.ti.mapIndex };
      if (o.state === TaskState.SUCCESS) {
        for (const e of o.outletEvents ?? []) events.push({ ...e, dagId: o.ti.dagId, runId: o.ti.runId, taskId: o.ti.taskId, mapIndex: o.ti.mapIndex, timestamp: o.endDate });
      }
      if (o.state === TaskState.SUCCESS && o.result !== undefined) xcoms.push({ ...at, key: 'return_value', value: o.result, ...o.stored?.get('return_value') });
      for (const [key, value] of o.pushes) xcoms.push({ ...at, key, value, ...o.stored?.get(key) });
      for (const l of o.logs as LogLine[]) logs.push({ tiId: o.ti.id, tryNumber: o.ti.tryNumber, ts: l.ts, level: l.level, message: l.message });
    }
    return { xcoms, logs, events };
  }

  private async loadRuns(runPks: number[]): Promise<void> {
    const missing = [...new Set(runPks)].filter((pk) => !this.runCache.has(pk));
    for (const r of await runContext(this.opts.database.db, missing)) {
      this.runCache.set(r.id, { logicalDate: r.logicalDate, dataIntervalStart: r.dataIntervalStart, dataIntervalEnd: r.dataIntervalEnd, conf: (r.conf ?? {}) as Record<string, unknown> });
    }
  }

  private async dagFor(dagId: string) {
    const bag = this.opts.dagBag;
    if (!bag.dags.has(dagId)) await bag.refresh();
    return bag.get(dagId);
  }

  private async maybeRefreshBag(): Promise<void> {
    if (Date.now() - this.lastBagRefresh < 2000) return;
    this.lastBagRefresh = Date.now();
    await this.opts.dagBag.refresh();
  }

  private async beat(): Promise<void> {
    try {
      await heartbeatJob(this.opts.database.db, this.id);
      if (!this.stopped) this.callbacks.wake();
      const ours = [...this.running.keys(), ...this.ready.map((t) => t.id)];
      if (ours.length) await heartbeatTis(this.opts.database.db, this.id, ours);
      // A safety net under NOTIFY: one sent while the listening connection was being
      // re-established (a database restart) is lost, and the TIs it announced would wait.
      if (!this.stopped && this.freeSlots() > 0) this.wake();
    } catch (err) {
      this.log(`heartbeat failed: ${(err as Error).message}`);
    }
  }

  private log(message: string): void {
    (this.opts.log ?? ((m: string) => process.stderr.write(`[worker] ${m}\n`)))(message);
  }

  /**
   * Stop claiming, let running TIs finish for up to `graceMs` (heartbeating meanwhile, so they
   * are not taken for zombies), write their results, and give back what is still running:
   * scheduled again with the try not counted, slots freed, other workers woken. Tasks given
   * back see their signal aborted, and anything they report later is refused by the ownership
   * check.
   */
  async stop(graceMs = Infinity): Promise<void> {
    this.stopped = true;
    await this.unlisten?.();
    this.claims.stop();
    await this.claims.idle;
    await this.callbacks.stop();
    await this.handBackReady();
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      Promise.allSettled([...this.running.values()]).then(() => true),
      new Promise<boolean>((r) => { if (Number.isFinite(graceMs)) timer = setTimeout(() => r(false), graceMs); }),
    ]);
    clearTimeout(timer);
    await this.results.drain();
    await this.handBackReady();
    if (!finished) await this.handBack();
    clearInterval(this.heartbeat);
    await this.syncPool.close();
    await endJob(this.opts.database.db, this.id).catch(() => undefined);
    await this.metrics.close();
  }

  private async handBack(): Promise<void> {
    const ids = [...this.running.keys()];
    // Given back first, aborted after: an aborted task's failure must not be recorded as a try.
    await this.giveBack(ids, 'still running after the grace period');
    for (const id of ids) this.aborts.get(id)?.abort(new Error('the worker is shutting down; the task was handed back'));
  }

  /** Prefetched TIs that never started go back at once. */
  private async handBackReady(): Promise<void> {
    const waiting = this.ready.splice(0);
    if (waiting.length) await this.giveBack(waiting.map((t) => t.id), 'claimed ahead and not started');
  }

  private async giveBack(ids: number[], why: string): Promise<void> {
    try {
      const given = await this.opts.database.db.transaction(async (tx) => {
        const back = await handBackTis(tx, this.id, ids);
        if (back.length) await tx.execute(notifySql(Channel.WORKER));
        return back;
      });
      this.log(`handed back ${given.length} TI(s) ${why}; other workers run them in the same try`);
    } catch (err) {
      this.log(`could not hand back ${ids.length} TI(s) ${why}; they will be reaped as zombies: ${dbErrorMessage(err)}`);
    }
  }
}

/** "dag.task[map] (run id)", for messages. */
function label(ti: ClaimedTi): string {
  return `${ti.dagId}.${ti.taskId}${ti.mapIndex >= 0 ? `[${ti.mapIndex}]` : ''} (run ${ti.runId})`;
}
