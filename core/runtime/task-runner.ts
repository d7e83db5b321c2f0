/**
 * Runs one claimed TI to an outcome: resolves its inputs from XCom, builds its context, runs
 * it on the event loop (async) or in the thread pool (sync) under its executionTimeout, and
 * turns the result or error into the next state (success, skipped, up_for_retry or failed).
 */
import type { Dag } from '../authoring/dag.ts';
import type { BaseOperator } from '../authoring/operator.ts';
import type { ContextData } from '../authoring/context.ts';
import { findXComArgs, resolveXComArgs } from '../authoring/function-task.ts';
import { retryDelayMs, shouldRetry } from '../authoring/retry.ts';
import type { Database } from '../db/client.ts';
import type { ClaimedTi } from '../db/queries/task-instances.ts';
import { readXComs, readXCom, xcomKey } from '../db/queries/xcom.ts';
import { TaskTimeoutError, XComSerializationError } from '../errors.ts';
import { findJsonProblem } from './json-value.ts';
import { buildContext, errorToData, type ErrorData } from './task-context.ts';
import { LogBuffer, taskLogScope, type LogLine } from './task-log.ts';
import type { SyncPool } from './sync-pool.ts';
import { TaskState } from './states.ts';

export interface RunInfo {
  logicalDate: Date;
  dataIntervalStart: Date | null;
  dataIntervalEnd: Date | null;
  conf: Record<string, unknown>;
}

export interface TaskOutcome {
  ti: ClaimedTi;
  state: TaskState;
  result: unknown;
  pushes: [string, unknown][];
  logs: LogLine[];
  error: string | null;
  endDate: Date;
  nextRetryAt: Date | null;
}

export interface RunnerEnv {
  database: Database;
  syncPool: SyncPool;
}

type Raw = { ok: true; result: unknown } | { ok: false; error: ErrorData };

export async function executeTi(ti: ClaimedTi, run: RunInfo, dag: Dag, env: RunnerEnv): Promise<TaskOutcome> {
  const logs = new LogBuffer();
  const pushes: [string, unknown][] = [];
  const op = dag.task(ti.taskId);
  let raw: Raw;
  if (!op) {
    raw = { ok: false, error: { ...errorToData(new Error(`task "${ti.taskId}" is no longer in DAG "${ti.dagId}" (${dag.fileloc})`)), retryable: false } };
  } else {
    raw = await runOperator(op, ti, run, dag, env, logs, pushes);
  }
  return toOutcome(ti, op, run, raw, logs, pushes);
}

async function runOperator(op: BaseOperator, ti: ClaimedTi, run: RunInfo, dag: Dag, env: RunnerEnv, logs: LogBuffer, pushes: [string, unknown][]): Promise<Raw> {
  const controller = new AbortController();
  const timeoutMs = op.options.executionTimeout;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<Raw>((resolve) => {
    if (timeoutMs === null) return;
    timer = setTimeout(() => {
      const err = new TaskTimeoutError(ti.dagId, ti.taskId, timeoutMs);
      controller.abort(err);
      resolve({ ok: false, error: errorToData(err) });
    }, timeoutMs);
  });
  try {
    const inputs = await resolveInputs(op, ti, env.database);
    const data: ContextData = {
      dagId: ti.dagId, runId: ti.runId, taskId: ti.taskId, mapIndex: ti.mapIndex, tryNumber: ti.tryNumber,
      logicalDate: run.logicalDate.toISOString(),
      dataIntervalStart: run.dataIntervalStart?.toISOString() ?? null,
      dataIntervalEnd: run.dataIntervalEnd?.toISOString() ?? null,
      params: dag.parseConf(run.conf), conf: run.conf,
    };
    const xcomPull = (taskId: string, key: string, mapIndex: number) => readXCom(env.database.db, ti.runPk, taskId, key, mapIndex);
    const work: Promise<Raw> = op.mode === 'async'
      ? runOnLoop(op, data, inputs, controller.signal, logs, pushes, xcomPull)
      : runInThread(dag, data, inputs, controller.signal, logs, pushes, xcomPull, env.syncPool);
    return await Promise.race([work, timedOut]);
  } catch (err) {
    return { ok: false, error: errorToData(err) };
  } finally {
    clearTimeout(timer);
  }
}

async function runOnLoop(op: BaseOperator, data: ContextData, inputs: unknown, signal: AbortSignal, logs: LogBuffer,
  pushes: [string, unknown][], xcomPull: (t: string, k: string, m: number) => Promise<unknown>): Promise<Raw> {
  const context = buildContext(data, { signal, log: logs.logger(), xcomPush: (k, v) => pushes.push([k, v]), xcomPull });
  try {
    const result = await taskLogScope.run(logs, () => op.run(context, inputs));
    const problem = findJsonProblem(result);
    if (problem) throw new XComSerializationError(op.dagId, op.taskId, problem.at, problem.what);
    return { ok: true, result };
  } catch (err) {
    return { ok: false, error: errorToData(err) };
  }
}

async function runInThread(dag: Dag, data: ContextData, inputs: unknown, signal: AbortSignal, logs: LogBuffer,
  pushes: [string, unknown][], xcomPull: (t: string, k: string, m: number) => Promise<unknown>, pool: SyncPool): Promise<Raw> {
  try {
    const res = await pool.run({
      fileloc: dag.fileloc, fileVersion: dag.fileVersion, context: data, inputs, signal, xcomPull,
    });
    logs.lines.push(...res.logs);
    pushes.push(...res.pushes);
    for (const w of res.warnings) logs.write('warn', w);
    return res.ok ? { ok: true, result: res.result } : { ok: false, error: res.error };
  } catch (err) {
    // An aborted run means the thread was terminated; the timeout path already resolved.
    return { ok: false, error: errorToData(signal.aborted ? signal.reason : err) };
  }
}

async function resolveInputs(op: BaseOperator, ti: ClaimedTi, database: Database): Promise<unknown> {
  const raw = op.inputs();
  const refs = findXComArgs(raw);
  if (!refs.length) return raw;
  const values = await readXComs(database.db, ti.runPk, refs.map((r) => ({ taskId: r.operator.taskId, key: r.key })));
  return resolveXComArgs(raw, (r) => values.get(xcomKey(r.operator.taskId, r.key)) ?? null);
}

function toOutcome(ti: ClaimedTi, op: BaseOperator | undefined, run: RunInfo, raw: Raw, logs: LogBuffer, pushes: [string, unknown][]): TaskOutcome {
  const endDate = new Date();
  const base = { ti, pushes, endDate, nextRetryAt: null as Date | null, result: undefined as unknown };
  if (raw.ok) return { ...base, result: raw.result, state: TaskState.SUCCESS, error: null, logs: logs.drain() };
  const e = raw.error;
  if (e.skip) {
    logs.write('info', `skipped: ${e.message}`);
    return { ...base, state: TaskState.SKIPPED, error: null, logs: logs.drain() };
  }
  logs.write('error', e.stack ?? `${e.name}: ${e.message}`);
  const error = `${e.name}: ${e.message}`;
  const o = op?.options;
  const policy = o && { retries: o.retries, retryDelayMs: o.retryDelay, retryExponentialBackoff: o.retryExponentialBackoff, maxRetryDelayMs: o.maxRetryDelay };
  if (policy && e.retryable && shouldRetry(policy, ti.tryNumber)) {
    const delay = retryDelayMs(policy, ti.tryNumber, `${ti.dagId}#${ti.taskId}#${run.logicalDate.toISOString()}#${ti.tryNumber}`);
    logs.write('info', `try ${ti.tryNumber} of ${policy.retries + 1} failed; retrying in ${Math.round(delay / 100) / 10}s`);
    return { ...base, state: TaskState.UP_FOR_RETRY, error, nextRetryAt: new Date(endDate.getTime() + delay), logs: logs.drain() };
  }
  return { ...base, state: TaskState.FAILED, error, logs: logs.drain() };
}
