/**
 * The triggerer service: claims trigger rows (FOR UPDATE SKIP LOCKED, up to its capacity,
 * woken by NOTIFY), runs every trigger on this one event loop, and applies what they yield to
 * the waiting TIs in batched transactions that also NOTIFY the workers, so a resumed task
 * starts milliseconds after its event. Deferral timeouts fire from timers. A triggerer whose
 * heartbeat goes stale loses its triggers to the others; a killed task's trigger is
 * cancelled with onKill. The watchdog names any trigger that blocks the loop.
 */
import type { Server } from 'node:http';
import { format } from 'node:util';
import type { SQL } from 'drizzle-orm';
import {
  Channel, notify, queries, JobType, KwargsCodec, deserializeTrigger, oneLine, Batcher, Rerunner, dbErrorMessage,
  xcomStorage, masker, defaultSecrets, type Secrets, type Connection, type Database, type TriggerOutcome,
} from '../core/index.ts';
import { TriggerRun, type TriggerRunOwner } from './trigger-run.ts';
import { TriggererMetrics } from './metrics.ts';
import { Watchdog } from './watchdog.ts';

export interface TriggererOptions {
  database: Database;
  /** Triggers this process runs at most (Airflow's default is 1,000; Updraft's is 100,000). */
  capacity?: number;
  /** Rows claimed per query; claiming loops until capacity or no more work. */
  claimBatch?: number;
  heartbeatMs?: number;
  /** A triggerer silent for this long is dead; its triggers are claimed by others. */
  healthThresholdMs?: number;
  /** Event payloads larger than this are stored as XCom and referenced. */
  inlineEventLimit?: number;
  blockThresholdMs?: number;
  metricsPort?: number;
  codec?: KwargsCodec;
  /** Connections and variables for triggers; defaults to the environment, then the database. */
  secrets?: Secrets;
  /** How often lines from `runtime.log` are written to the waiting TIs' logs (default 1 s). */
  logFlushMs?: number;
  log?: (message: string) => void;
}

/** Lines kept for the TI logs before the oldest are dropped (a trigger logging in a tight loop). */
const MAX_PENDING_LOG_LINES = 50_000;

export class Triggerer implements TriggerRunOwner {
  readonly runs = new Map<number, TriggerRun>();
  readonly metrics = new TriggererMetrics();
  readonly watchdog: Watchdog;
  private readonly capacity: number;
  /** The worst event-loop lag (ms) sampled since the last heartbeat. */
  private lagSinceBeat = 0;
  private readonly codec: KwargsCodec;
  private readonly secrets: Secrets;
  private readonly outcomes: Batcher<TriggerOutcome>;
  /** Trigger log lines not yet written to the TIs' logs. */
  private pendingLogs: queries.logs.TriggerLogWrite[] = [];
  private droppedLogs = 0;
  /** Deferral-timeout timers by TI id. */
  private readonly tiTimers = new Map<number, NodeJS.Timeout>();
  private lastOrphanSweep = 0;
  private mismatches = 0;
  private readonly intervals: NodeJS.Timeout[] = [];
  private readonly claims = new Rerunner(() => this.claimLoop(), (err) => this.log(`claim failed: ${oneLine(err)}`));
  private stopped = false;
  private unlisten?: () => Promise<void>;
  private server?: Server;
  /** Count of events applied (for tests and benchmarks). */
  applied = 0;

  private constructor(private readonly opts: TriggererOptions, readonly id: string) {
    this.capacity = opts.capacity ?? 100_000;
    this.codec = opts.codec ?? KwargsCodec.fromEnv();
    this.secrets = opts.secrets ?? defaultSecrets(opts.database).secrets;
    this.outcomes = new Batcher((batch) => this.flush(batch), {
      onError: (err, n) => this.log(`could not apply ${n} trigger event(s), retrying: ${dbErrorMessage(err)}`),
      // An outcome the database refuses fails the waits on that trigger alone, saying why.
      poisoned: (o, err) => {
        const message = `the database refused what trigger #${o.triggerId} (${this.runs.get(o.triggerId)?.name ?? 'unknown'}) produced: ${dbErrorMessage(err)}`;
        this.log(message);
        return { triggerId: o.triggerId, kind: 'failure', failure: { kind: 'error', message, retryable: false } };
      },
      dropped: (o, err) => {
        this.log(`could not fail the waits on trigger #${o.triggerId} either; it stops here: ${dbErrorMessage(err)}`);
        this.stopRun(o.triggerId, false);
      },
    });
    this.watchdog = new Watchdog(opts.blockThresholdMs ?? 200, (r) => {
      this.metrics.blocked.inc({ trigger: r.name });
      // Labels are looked up only when needed, so 100k idle triggers carry no strings.
      void queries.triggers.waitingTis(opts.database.db, [r.triggerId])
        .then((tis) => tis.map((t) => t.label).join(', ') || 'no TI waiting')
        .catch(() => 'TIs unknown')
        .then((tis) => this.log(`trigger ${r.name} #${r.triggerId} (${tis}) blocked the event loop for ${r.ms} ms`));
    }, (ms) => {
      this.metrics.loopLag.observe(ms / 1000);
      this.lagSinceBeat = Math.max(this.lagSinceBeat, ms);
    });
  }

  get database(): Database {
    return this.opts.database;
  }

  accept(outcome: TriggerOutcome): void {
    this.enqueue(outcome);
  }

  report(message: string): void {
    this.log(message);
  }

  connection(connId: string): Promise<Connection> {
    return this.secrets.connection(connId);
  }

  variable(key: string): Promise<string | undefined> {
    return this.secrets.variable(key);
  }

  triggerLog(run: TriggerRun, level: 'info' | 'warn' | 'error' | 'debug', message: string, args: unknown[]): void {
    if (this.pendingLogs.length >= MAX_PENDING_LOG_LINES) {
      this.droppedLogs++;
      return;
    }
    this.pendingLogs.push({ triggerId: run.triggerId, ts: new Date(), level, message: masker.mask(`[${run.name}] ${args.length ? format(message, ...args) : message}`) });
  }

  /** The pending trigger log lines as one statement, taken off the queue. */
  private takeLogs(): SQL | null {
    if (this.droppedLogs) {
      this.log(`${this.droppedLogs} trigger log line(s) dropped: more than ${MAX_PENDING_LOG_LINES} were waiting to be written`);
      this.droppedLogs = 0;
    }
    const lines = this.pendingLogs;
    this.pendingLogs = [];
    return queries.logs.writeTriggerLogsStatement(lines);
  }

  private async flushLogs(): Promise<void> {
    const statement = this.takeLogs();
    if (statement) await this.opts.database.db.execute(statement);
  }

  static async create(opts: TriggererOptions): Promise<Triggerer> {
    const id = await queries.jobs.registerJob(opts.database.db, JobType.TRIGGERER);
    const t = new Triggerer(opts, id);
    t.watchdog.start();
    t.unlisten = await opts.database.listen(Channel.TRIGGERER, (payload) => t.onNotify(payload), () => {
      t.log('listening again after the database connection was lost; looking for triggers');
      t.wake();
    });
    if (opts.metricsPort !== undefined) t.server = await t.metrics.serve(opts.metricsPort);
    t.every(opts.heartbeatMs ?? 5000, () => t.heartbeat());
    t.every(opts.logFlushMs ?? 1000, () => t.flushLogs());
    t.updateGauges();
    t.wake();
    return t;
  }

  private onNotify(payload: string): void {
    if (payload.startsWith('kill:')) {
      for (const id of payload.slice(5).split(',').map(Number)) this.stopRun(id, true);
      return;
    }
    // Ids of triggers that gained a waiting TI: refresh their timeouts if they run here.
    const ids = payload.split(',').map(Number).filter((n) => this.runs.has(n));
    if (ids.length) void this.loadWaitingTis(ids).catch((err) => this.log(`loading waiting TIs failed: ${oneLine(err)}`));
    this.wake();
  }

  /** Claim triggers until capacity; wake-ups during a claim coalesce. */
  wake(): void {
    void this.claims.request();
  }

  private async claimLoop(): Promise<void> {
    const batch = this.opts.claimBatch ?? 1000;
    while (!this.stopped) {
      const room = this.capacity - this.runs.size;
      if (room <= 0) return;
      const claimed = await queries.triggers.claimTriggers(this.opts.database, this.id, Math.min(room, batch), this.opts.healthThresholdMs ?? 30_000);
      if (!claimed.length) return;
      const now = Date.now();
      const started: number[] = [];
      for (const row of claimed) {
        if (this.runs.has(row.id)) continue;
        this.metrics.queueDelay.observe(Math.max(0, now - row.createdDate.getTime()) / 1000);
        try {
          const trigger = deserializeTrigger({ name: row.name, kwargs: this.codec.open(row.kwargs) });
          const run = new TriggerRun(row.id, row.name, trigger, this);
          this.runs.set(row.id, run);
          started.push(row.id);
        } catch (err) {
          // Unknown name, invalid kwargs or an unknown key: fail the waiting tasks, clearly.
          this.log(`trigger #${row.id} (${row.name}) cannot run: ${oneLine(err)}`);
          this.enqueue({ triggerId: row.id, kind: 'failure', failure: { kind: 'error', message: oneLine(err), retryable: false } });
        }
      }
      // The rows are ours once the claim committed: start them even if reading their TIs'
      // timeouts fails (a database restart), and keep reading until it succeeds.
      await this.loadWaitingTis(started).catch((err) => this.retryLoadWaitingTis(started, err));
      for (const id of started) this.runs.get(id)?.start();
      this.updateGauges();
      if (claimed.length < Math.min(room, batch)) return;
    }
  }

  /** Waiting TIs per trigger, and timers for their deferral timeouts. */
  private async loadWaitingTis(triggerIds: number[]): Promise<void> {
    for (let i = 0; i < triggerIds.length; i += 5000) {
      const rows = await queries.triggers.waitingTiTimeouts(this.opts.database.db, triggerIds.slice(i, i + 5000));
      for (const ti of rows) {
        const run = this.runs.get(ti.triggerId);
        if (!run || run.tiIds.includes(ti.id)) continue;
        run.tiIds.push(ti.id);
        if (ti.triggerTimeout) this.armTimeout(ti.id, ti.triggerId, ti.triggerTimeout);
      }
    }
  }

  private retryLoadWaitingTis(ids: number[], err: unknown, delayMs = 250): void {
    this.log(`loading waiting TIs failed, retrying in ${delayMs} ms: ${oneLine(err)}`);
    const t = setTimeout(() => {
      if (this.stopped) return;
      this.loadWaitingTis(ids.filter((id) => this.runs.has(id)))
        .catch((again) => this.retryLoadWaitingTis(ids, again, Math.min(delayMs * 2, 5000)));
    }, delayMs);
    t.unref();
  }

  private armTimeout(tiId: number, triggerId: number, at: Date): void {
    clearTimeout(this.tiTimers.get(tiId));
    const fire = () => {
      const left = at.getTime() - Date.now();
      // setTimeout caps at ~24.8 days; re-arm until the moment arrives.
      if (left > 0) {
        this.tiTimers.set(tiId, setTimeout(fire, Math.min(left, 2 ** 31 - 1)));
        return;
      }
      this.tiTimers.delete(tiId);
      void this.timeoutTi(tiId, triggerId).catch((err) => this.log(`timing out TI ${tiId} failed: ${oneLine(err)}`));
    };
    fire();
  }

  private async timeoutTi(tiId: number, triggerId: number): Promise<void> {
    const { database } = this.opts;
    const run = this.runs.get(triggerId);
    const done = await database.db.transaction(async (tx) => {
      const ok = await queries.triggerEvents.timeoutWaitingTi(tx, database, tiId, triggerId, `deferral on trigger ${run?.name ?? `#${triggerId}`} timed out`);
      if (ok) await notify(tx, Channel.WORKER);
      return ok;
    });
    if (done) this.metrics.timeouts.inc();
    if (run) run.tiIds.splice(run.tiIds.indexOf(tiId) >>> 0, 1);
    if (run && run.tiIds.length === 0) {
      // Nobody waits any more: stop it (cleanup only) and remove the row if still unused.
      this.stopRun(triggerId, false);
      await database.db.transaction((tx) => queries.triggers.deleteUnusedTriggers(tx, [triggerId]));
    }
  }

  private enqueue(o: TriggerOutcome): void {
    this.outcomes.push(o);
  }

  /** Apply a batch of outcomes: delete the fired rows first, then resume or finish their TIs. */
  private async flush(batch: TriggerOutcome[]): Promise<void> {
    const { database } = this.opts;
    const storage = xcomStorage();
    const inline = this.opts.inlineEventLimit ?? storage.options.inlineLimit;
    const logs = this.takeLogs();
    const applied = await database.db.transaction(async (tx) => {
      // Lines first: once the outcome applies, the TIs no longer point at the trigger.
      if (logs) await tx.execute(logs);
      await queries.triggers.deleteTriggers(tx, batch.map((o) => o.triggerId));
      const tis = await queries.triggerEvents.applyTriggerOutcomes(tx, database, batch, inline, (w) => storage.encodeWrite(w));
      if (tis.some((t) => t.state === 'scheduled')) await notify(tx, Channel.WORKER);
      const ended = [...new Set(tis.filter((t) => t.state !== 'scheduled').map((t) => t.runPk))];
      if (ended.length) await notify(tx, Channel.SCHEDULER, `runs:${ended.join(',')}`);
      return tis;
    });
    this.applied += applied.length;
    for (const o of batch) {
      if (o.kind === 'failure') this.metrics.failures.inc();
      else this.metrics.events.inc();
      this.forget(o.triggerId);
    }
    this.updateGauges();
    this.wake();
  }

  private stopRun(triggerId: number, kill: boolean): void {
    const run = this.runs.get(triggerId);
    if (!run) return;
    run.cancel(kill);
    this.forget(triggerId);
    this.updateGauges();
  }

  /** Drop a run and the timeout timers of the TIs that waited on it. */
  private forget(triggerId: number): void {
    for (const ti of this.runs.get(triggerId)?.tiIds ?? []) {
      clearTimeout(this.tiTimers.get(ti));
      this.tiTimers.delete(ti);
    }
    this.runs.delete(triggerId);
  }

  private async heartbeat(): Promise<void> {
    const { database } = this.opts;
    // Capacity and the worst loop lag since the last beat, for the UI's triggerer list.
    await queries.jobs.heartbeatJob(database.db, this.id, { capacity: this.capacity, running: this.runs.size, loopLagMs: Math.round(this.lagSinceBeat * 10) / 10 });
    this.lagSinceBeat = 0;
    // Drop triggers deleted or taken over behind our back (no onKill: not a user kill). A count
    // first: listing 100k ids every heartbeat would stall the loop for nothing.
    const owned = await queries.triggers.countOwned(database.db, this.id);
    // Events in flight make the counts differ briefly; act only on a mismatch that persists.
    this.mismatches = owned === this.runs.size ? 0 : this.mismatches + 1;
    if (this.mismatches >= 2) {
      const ids = await queries.triggers.ownedTriggerIds(database.db, this.id);
      const pending = new Set(this.outcomes.pending.map((o) => o.triggerId));
      const lost = [...this.runs.keys()].filter((id) => !ids.has(id) && !pending.has(id));
      for (const id of lost) this.stopRun(id, false);
      // Typically after a partition: another triggerer took them over while we were cut off.
      if (lost.length) this.log(`stopped ${lost.length} trigger(s) no longer assigned here (fired, or taken over by another triggerer)`);
      // Rows recorded as ours that run nowhere (a claim whose answer was lost): hand them back.
      // Not while a claim is in flight: its rows may be committed but not yet started here.
      if (!this.claims.busy) await this.release([...ids].filter((id) => !this.runs.has(id)));
    }
    if (Date.now() - this.lastOrphanSweep > 60_000) {
      this.lastOrphanSweep = Date.now();
      await database.db.transaction((tx) => queries.triggers.deleteOrphanTriggers(tx));
    }
    this.wake();
  }

  /** Clear our ownership of these rows and announce them, so any triggerer claims them. */
  private async release(ids: number[]): Promise<void> {
    if (!ids.length) return;
    await this.opts.database.db.transaction(async (tx) => {
      await queries.triggers.releaseTriggers(tx, this.id, ids);
      await notify(tx, Channel.TRIGGERER);
    }).catch((err) => this.log(`could not release ${ids.length} trigger(s): ${oneLine(err)}`));
  }

  private updateGauges(): void {
    this.metrics.running.set(this.runs.size);
    this.metrics.capacityLeft.set(Math.max(0, this.capacity - this.runs.size));
  }

  private every(ms: number, fn: () => Promise<unknown>): void {
    const t = setInterval(() => {
      if (!this.stopped) fn().catch((err) => this.log(oneLine(err)));
    }, ms);
    t.unref();
    this.intervals.push(t);
  }

  private log(message: string): void {
    (this.opts.log ?? ((m: string) => process.stderr.write(`[triggerer] ${m}\n`)))(message);
  }

  /** Stop every trigger (cleanup, not onKill), hand the rows back, and leave. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.claims.stop();
    for (const t of this.intervals) clearInterval(t);
    for (const t of this.tiTimers.values()) clearTimeout(t);
    await this.unlisten?.();
    await this.outcomes.drain();
    for (const id of [...this.runs.keys()]) this.stopRun(id, false);
    await this.flushLogs().catch((err) => this.log(`trigger log lines lost at shutdown: ${oneLine(err)}`));
    const { database } = this.opts;
    await database.db.transaction(async (tx) => {
      await queries.triggers.releaseTriggers(tx, this.id);
      await notify(tx, Channel.TRIGGERER);
    }).catch(() => undefined);
    await queries.jobs.endJob(database.db, this.id).catch(() => undefined);
    this.watchdog.stop();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
