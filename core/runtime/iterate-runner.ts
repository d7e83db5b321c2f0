/**
 * Runs an `iterate()` TI: every item of its lists inside this one TI, at most `concurrency` at
 * a time (async callables on the worker's loop, sync ones through the thread pool). Items
 * retry on their own with exponential backoff; finished items are checkpointed in batches to
 * `iterate_items` (with the TI's `progress`), so a retried try skips what already succeeded.
 * Per-item cost is kept to the essentials: state lives in typed arrays, there is no per-item
 * database round trip and no per-item log line, and checkpoints never hold up an item.
 */
import { setMaxListeners } from 'node:events';
import type { ContextData } from '../authoring/context.ts';
import { itemInput, productLength, type IterateOperator, type IterateResult } from '../authoring/mapping.ts';
import { semaphore } from '../authoring/semaphore.ts';
import type { Database } from '../db/client.ts';
import type { ClaimedTi } from '../db/queries/task-instances.ts';
import { loadCheckpoints, setProgress, writeCheckpoints, type CheckpointRow } from '../db/queries/iterate.ts';
import { TaskFailure, XComSerializationError } from '../errors.ts';
import { resolveMapLists } from './inputs.ts';
import { findJsonProblem } from '../model/json-value.ts';
import { buildContext, type Lookups } from './task-context.ts';
import type { OutletEventData } from '../authoring/dataset.ts';
import { taskLogScope, type LogBuffer } from './task-log.ts';
import type { SyncPool } from './sync-pool.ts';

/**
 * Finished items are written a short pause after they finish (group commit): at least this
 * long, and at least as long as the last write took, so checkpoints take at most half the
 * time (PGlite runs them on this loop). A killed worker loses only the items of that pause
 * and the ones in flight.
 */
const CHECKPOINT_GAP_MS = 10;
/** Rows per checkpoint statement, so one write never holds the database (or PGlite's loop) long. */
const MAX_ROWS_PER_WRITE = 2000;
/** How many failures the TI's error names; the rest are counted. */
const NAMED_FAILURES = 5;
/** Item failures logged one by one before the log only counts them. */
const LOGGED_FAILURES = 20;
const PROGRESS_LOG_EVERY_MS = 10_000;
/** Failed checkpoint writes retried at the end before giving up (a TI retry then redoes those items). */
const FINAL_WRITE_ATTEMPTS = 3;

export interface IterateEnv {
  database: Database;
  syncPool: SyncPool;
  fileloc: string;
  fileVersion: string;
  /** The TI's signal: executionTimeout aborts it, and no new item starts after that. */
  signal: AbortSignal;
  logs: LogBuffer;
  pushes: [string, unknown][];
  /** Dataset events items add at run time. */
  outlets: OutletEventData[];
  xcomPull(taskId: string, key: string, mapIndex: number): Promise<unknown>;
  lookups: Lookups;
}

/** Some items failed for good. Retryable (a retry re-runs only the failed items) unless every failure was final. */
export class IterateItemsError extends TaskFailure {
  override readonly retryable: boolean;
  constructor(message: string, retryable: boolean, readonly failures: { index: number; error: string }[]) {
    super(message);
    this.retryable = retryable;
  }
}

const SUCCESS = 1, FAILED = 2; // item states in a Uint8Array; 0 = not finished

export function runIterate(op: IterateOperator, ti: ClaimedTi, data: ContextData, env: IterateEnv): Promise<unknown> {
  return taskLogScope.run(env.logs, () => iterate(op, ti, data, env));
}

async function iterate(op: IterateOperator, ti: ClaimedTi, data: ContextData, env: IterateEnv): Promise<unknown> {
  const { database, signal, logs } = env;
  const o = op.iterateOptions;
  const started = Date.now();
  // Every item in flight may listen on the TI's signal (retry waits, the thread pool, fetch()).
  setMaxListeners(0, signal);
  const { partial, lists } = await resolveMapLists(database.db, ti.runPk, op);
  const total = productLength(lists);

  const results: unknown[] = new Array(total).fill(null);
  const status = new Uint8Array(total);
  const attempts = new Uint32Array(total);
  const finishedAt = new Float64Array(total);
  const errors = new Map<number, string>();
  let done = 0, failed = 0, retried = 0;
  let finalFailures = 0; // failures no TI retry can fix

  // Resume: successes from earlier tries are reused; failures run again (keeping their attempt count).
  let failedBefore = 0, resumed = 0;
  for (const row of await loadCheckpoints(database.db, ti.id)) {
    if (row.index < 0 || row.index >= total) continue;
    attempts[row.index] = row.attempts;
    if (row.state === 'success') {
      status[row.index] = SUCCESS;
      results[row.index] = row.result ?? null;
      resumed++;
    } else failedBefore++;
  }
  done = resumed;
  const mode = op.mode === 'async' ? 'on the event loop' : 'in worker threads';
  logs.write('info', resumed || failedBefore
    ? `resuming: ${resumed} of ${total} items already done${failedBefore ? `; retrying ${failedBefore} that failed before` : ''}; ${o.concurrency} at a time ${mode}`
    : `iterating over ${total} items, ${o.concurrency} at a time ${mode}`);
  await setProgress(database.db, ti.id, ti.tryNumber, { done, failed, total }, true);

  // ---- checkpoints: one write in flight at a time, never awaited by the items themselves
  let pending: number[] = [];
  let writing: Promise<void> | null = null;
  let writeFailures = 0;
  let lastProgressLog = started;
  const write = async (): Promise<void> => {
    const batch = pending.length > MAX_ROWS_PER_WRITE ? pending.splice(0, MAX_ROWS_PER_WRITE) : pending;
    if (batch === pending) pending = [];
    const rows: CheckpointRow[] = batch.map((i) => ({
      index: i, state: status[i] === SUCCESS ? 'success' : 'failed', result: status[i] === SUCCESS ? results[i] : null,
      error: errors.get(i) ?? null, attempts: attempts[i], finishedAt: finishedAt[i],
    }));
    try {
      await writeCheckpoints(database, ti.id, ti.tryNumber, rows, { done, failed, total });
      if (writeFailures) logs.write('info', `checkpoints are being written again after ${writeFailures} failed attempt(s)`);
      writeFailures = 0;
    } catch (err) {
      // Keep the rows: the next flush writes them (upserts make a repeat harmless).
      pending = batch.concat(pending);
      if (writeFailures++ === 0) logs.write('warn', `checkpoint of ${batch.length} item(s) failed, will retry: ${dbError(err)}`);
    }
  };
  let flushQueued = false;
  let lastWriteMs = 0;
  const flushAfter = (ms: number) => {
    flushQueued = true;
    setTimeout(() => { flushQueued = false; flush(); }, ms);
  };
  const flush = () => {
    if (writing || !pending.length) return;
    const t0 = Date.now();
    writing = write().finally(() => {
      writing = null;
      lastWriteMs = Date.now() - t0;
      if (pending.length && !writeFailures && !flushQueued) flushAfter(Math.max(CHECKPOINT_GAP_MS, lastWriteMs));
    });
  };
  // The net under the pauses, and the retry of failed writes.
  const timer = setInterval(() => {
    flush();
    if (Date.now() - lastProgressLog < PROGRESS_LOG_EVERY_MS) return;
    lastProgressLog = Date.now();
    logs.write('info', `progress: ${done} of ${total} items done, ${failed} failed`);
  }, Math.max(10, o.checkpointEveryMs));

  const settle = (i: number) => {
    finishedAt[i] = Date.now();
    pending.push(i);
    if (!writing && !flushQueued && !writeFailures) flushAfter(Math.max(CHECKPOINT_GAP_MS, lastWriteMs));
  };
  const fail = (i: number, err: unknown, tries: number) => {
    status[i] = FAILED;
    failed++;
    if (!isRetryable(err)) finalFailures++;
    const msg = describe(err);
    errors.set(i, msg);
    if (failed <= LOGGED_FAILURES) logs.write('warn', `item #${i} failed after ${tries} attempt(s): ${msg}`);
    settle(i);
  };

  // ---- one item call, on the loop or in a thread; throws what the item threw
  const ctx = buildContext(data, { signal, log: logs.logger(), xcomPush: (k, v) => env.pushes.push([k, v]), outletEvent: (e) => env.outlets.push(e), xcomPull: env.xcomPull, ...env.lookups });
  const warned = new Set<string>();
  const call = op.mode === 'async'
    ? (input: Record<string, unknown>) => op.fn(input, ctx)
    : async (input: Record<string, unknown>) => {
      const res = await env.syncPool.run({
        fileloc: env.fileloc, fileVersion: env.fileVersion, context: data, inputs: input, nextMethod: null, failure: null, signal, xcomPull: env.xcomPull, lookups: env.lookups,
      });
      for (const l of res.logs) logs.write(l.level, l.message);
      for (const p of res.pushes) env.pushes.push(p);
      env.outlets.push(...res.outletEvents);
      for (const w of res.warnings) if (!warned.has(w)) { warned.add(w); logs.write('warn', w); }
      if (res.ok) return res.result;
      throw 'deferred' in res ? { name: 'TaskDeferred', message: '', retryable: false } : res.error;
    };

  // ---- launch in item order; the semaphore bounds items in flight (retry waits included)
  const sem = semaphore(o.concurrency);
  let active = 0;
  let idle: (() => void) | null = null;
  const runItem = async (i: number, release: () => void): Promise<void> => {
    const input = itemInput(partial, lists, i);
    let delay = o.itemRetryDelayMs;
    try {
      for (let tries = 1; ; tries++) {
        attempts[i]++;
        try {
          let r = await call(input);
          if (r === undefined) r = null;
          else if (r !== null && typeof r !== 'string' && typeof r !== 'boolean') {
            const problem = findJsonProblem(r);
            if (problem) throw new XComSerializationError(op.dagId, op.taskId, `item #${i} ${problem.at}`, problem.what);
          }
          results[i] = r;
          status[i] = SUCCESS;
          done++;
          settle(i);
          return;
        } catch (err) {
          if (tries > o.itemRetries || !isRetryable(err) || signal.aborted) return fail(i, err, tries);
          retried++;
          if (!(await pause(delay, signal))) return fail(i, err, tries);
          delay *= 2;
        }
      }
    } finally {
      release();
      if (--active === 0 && idle) idle();
    }
  };

  try {
    for (let i = 0; i < total; i++) {
      if (status[i] === SUCCESS) continue;
      if (signal.aborted) break;
      // A free permit is taken without a promise; only a full semaphore makes the launcher wait.
      const release = sem.tryAcquire() ?? await sem.acquire();
      if (signal.aborted) {
        release();
        break;
      }
      active++;
      void runItem(i, release);
    }
    if (active) await new Promise<void>((resolve) => { idle = resolve; });
  } finally {
    clearInterval(timer);
  }

  if (signal.aborted || (failed && !o.tolerateFailures)) {
    // A retry follows: it must find every finished item checkpointed.
    await drainCheckpoints(false);
  } else {
    // The TI's result carries every item now. Progress is made exact before the TI ends; the
    // remaining rows follow in the background rather than holding up the TI's end.
    await setProgress(database.db, ti.id, ti.tryNumber, { done, failed, total })
      .catch((err) => logs.write('warn', `could not record final progress: ${dbError(err)}`));
    void drainCheckpoints(true);
  }

  async function drainCheckpoints(background: boolean): Promise<void> {
    for (let retry = 0; writing || pending.length;) {
      if (writing) {
        await writing;
        continue;
      }
      if (writeFailures) {
        if (++retry > FINAL_WRITE_ATTEMPTS) {
          logs.write('warn', `could not checkpoint ${pending.length} finished item(s); a retry of this TI runs them again`);
          return;
        }
        // In the background the wait must not keep a stopping worker's process alive.
        await new Promise((r) => { const t = setTimeout(r, 250 * retry); if (background) t.unref(); });
      }
      flush();
    }
  }

  if (signal.aborted) throw signal.reason;
  const secs = ((Date.now() - started) / 1000).toFixed(2);
  const extra = `${resumed ? `, ${resumed} of them in earlier tries` : ''}${retried ? `; ${retried} item retr${retried === 1 ? 'y' : 'ies'}` : ''}`;
  logs.write('info', `finished ${total} items in ${secs}s: ${done} succeeded, ${failed} failed${extra}`);
  const failures = [...errors].sort((a, b) => a[0] - b[0]).map(([index, error]) => ({ index, error }));
  if (o.tolerateFailures) return { results, failures } satisfies IterateResult<unknown>;
  if (failed) {
    const named = failures.slice(0, NAMED_FAILURES).map((f) => `#${f.index} ${f.error}`).join('; ');
    const more = failed > NAMED_FAILURES ? `; and ${failed - NAMED_FAILURES} more` : '';
    throw new IterateItemsError(`${failed} of ${total} items failed: ${named}${more}`, finalFailures < failed, failures);
  }
  return results;
}

/** Wait `ms`; false if the signal aborted first. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = () => { clearTimeout(t); resolve(false); };
    const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(true); }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** The driver's reason, not drizzle's wrapper (which quotes the query and its whole JSON payload). */
function dbError(err: unknown): string {
  const e = err as { cause?: { message?: unknown }; message?: unknown };
  const msg = typeof e?.cause?.message === 'string' ? e.cause.message : typeof e?.message === 'string' ? e.message : String(err);
  return msg.length > 300 ? `${msg.slice(0, 299)}…` : msg;
}

function isRetryable(err: unknown): boolean {
  const e = err as { retryable?: unknown; name?: unknown } | null;
  if (!e || typeof e !== 'object') return true;
  return e.retryable !== false && e.name !== 'TaskDeferred' && e.name !== 'TaskSkipped';
}

/** `Name: first line of the message`, short enough to list several in one TI error. */
function describe(err: unknown): string {
  const e = err as { name?: unknown; message?: unknown } | null;
  if (e && typeof e === 'object' && e.name === 'TaskDeferred') return 'TaskDeferred: items of iterate() cannot defer; use a deferrable task or expand() instead';
  const name = e && typeof e === 'object' && typeof e.name === 'string' ? e.name : 'Error';
  const raw = e && typeof e === 'object' && typeof e.message === 'string' ? e.message : String(err);
  const line = raw.split('\n', 1)[0];
  return `${name}: ${line.length > 200 ? `${line.slice(0, 199)}…` : line}`;
}
