/**
 * Runs one claimed TI to an outcome: resolves its inputs from XCom, builds its context, runs
 * it on the event loop (async) or in the thread pool (sync) under what is left of its
 * executionTimeout, and turns the result into the next state: success, skipped, deferred,
 * up_for_retry or failed. A resumed TI gets its trigger event (or its failure) instead.
 */
import type { Dag } from '../authoring/dag.ts';
import type { BaseOperator } from '../authoring/operator.ts';
import type { ContextData } from '../authoring/context.ts';
import { retryDelayMs, shouldRetry } from '../authoring/retry.ts';
import type { Database } from '../db/client.ts';
import { previousTry, type ClaimedTi } from '../db/queries/task-instances.ts';
import { readXCom } from '../db/queries/xcom.ts';
import { resolveOperatorInputs } from './inputs.ts';
import { EVENT_XCOM_KEY } from '../db/queries/trigger-events.ts';
import { TaskFailedNoRetry, TaskTimeoutError, XComSerializationError } from '../errors.ts';
import { IterateOperator, MappedFunctionOperator } from '../authoring/mapping.ts';
import { runIterate } from './iterate-runner.ts';
import { findXComArgs } from '../authoring/function-task.ts';
import { findJsonProblem } from '../model/json-value.ts';
import { buildContext, errorToData, type ErrorData, type Lookups } from './task-context.ts';
import { LogBuffer, taskLogScope, type LogLine } from './task-log.ts';
import type { SyncPool } from './sync-pool.ts';
import { deferralRequest, invokeOperator, isTaskDeferred, type DeferralFailure, type DeferralRequest } from './invoke.ts';
import { TaskState } from '../model/states.ts';
import { xcomStorage, type StoredXCom } from '../xcom/storage.ts';
import { masker } from '../secrets/masker.ts';
import { renderTaskFields } from './render-task.ts';
import { outletEventsSchema, withDeclaredOutlets, type OutletEventData } from '../authoring/dataset.ts';
import { CallbackKind } from '../authoring/callbacks.ts';
import { afterTry, runTaskCallbacks } from './callbacks.ts';
import { decideSkips, skipPolicyOf } from '../authoring/branching.ts';
import { isTaskRescheduled, type TaskRescheduled } from '../authoring/reschedule.ts';

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
  deferral: (DeferralRequest & { triggerTimeout: Date | null }) | null;
  /** Set when a sensor in reschedule mode asked to poke again later. */
  reschedule?: { at: Date; kwargs: Record<string, unknown> };
  /** Stored forms of values too large to go inline, by XCom key (see xcom/storage.ts). */
  stored?: Map<string, StoredXCom>;
  /** The templated fields as rendered for this try, secrets masked. */
  rendered?: Record<string, unknown>;
  /**
   * Dataset events: on success, those to record with the finish; on a deferral, those added so
   * far, carried in next_kwargs to the resume.
   */
  outletEvents?: OutletEventData[];
  /** Downstream task ids a branch or short-circuit did not follow: their TIs (this map index) are skipped with the success. */
  skipDownstream?: string[];
}

export interface RunnerEnv {
  database: Database;
  /** Connections and variables for `ctx.connection()` and `ctx.variable()`. */
  lookups: Lookups;
  syncPool: SyncPool;
  maxMapLength: number;
  /** Aborted when the worker gives the TI back (a shutdown past its grace period). */
  signal?: AbortSignal;
}

/** What `next_kwargs` holds for a deferred TI; the triggerer adds `event` or `failure`. */
export interface NextKwargs {
  kwargs?: Record<string, unknown>;
  event?: unknown;
  failure?: DeferralFailure;
  /** Dataset events added before the deferral. */
  outletEvents?: unknown;
}

const EVENT_REF = '__xcom_ref__';

type Raw = { ok: true; result: unknown } | { ok: false; error: ErrorData } | { ok: false; deferred: DeferralRequest }
  | { ok: false; rescheduled: TaskRescheduled };

export async function executeTi(ti: ClaimedTi, run: RunInfo, dag: Dag, env: RunnerEnv): Promise<TaskOutcome> {
  const logs = new LogBuffer();
  const pushes: [string, unknown][] = [];
  const outlets = carriedOutletEvents(ti);
  const rendered: { value?: Record<string, unknown> } = {};
  const skips: string[] = [];
  const op = dag.task(ti.taskId)?.freshInstance();
  let raw: Raw;
  if (!op) {
    raw = { ok: false, error: { ...errorToData(new Error(`task "${ti.taskId}" is no longer in DAG "${ti.dagId}" (${dag.fileloc})`)), retryable: false } };
  } else if (ti.poolMissing) {
    raw = { ok: false, error: { ...errorToData(new Error(`task "${ti.taskId}" of DAG "${ti.dagId}" uses pool "${ti.pool}", which does not exist; create it with \`updraft pools set ${ti.pool} <slots>\``)), retryable: false } };
  } else {
    await runTaskCallbacks(op, CallbackKind.EXECUTE, ti, run, dag, env, logs);
    raw = await runOperator(op, ti, run, dag, env, logs, { pushes, outlets }, rendered);
    if (raw.ok) raw = checkMapSource(op, dag, raw, env.maxMapLength);
    if (raw.ok) raw = decideBranch(dag, ti.taskId, raw, logs, skips);
    raw = checkStorable(op, raw, pushes);
  }
  const outcome = toOutcome(ti, op, run, raw, logs, pushes);
  if (op) await afterTry(op, outcome, ti, run, dag, env);
  if (outcome.state === TaskState.SUCCESS && skips.length) outcome.skipDownstream = skips;
  if (rendered.value) outcome.rendered = rendered.value;
  if (op && outcome.state === TaskState.SUCCESS) outcome.outletEvents = withDeclaredOutlets(op.options.outlets.map((d) => d.uri), outlets);
  if (outcome.state === TaskState.DEFERRED) outcome.outletEvents = outlets;
  return op ? encodeLarge(outcome, op) : outcome;
}

/** Large values are compressed or moved to the XCom store here, off the batch write. */
async function encodeLarge(outcome: TaskOutcome, op: BaseOperator): Promise<TaskOutcome> {
  const storage = xcomStorage();
  const values: [string, unknown][] = [...outcome.pushes];
  if (outcome.state === TaskState.SUCCESS && outcome.result !== undefined) values.push(['return_value', outcome.result]);
  const at = { runPk: outcome.ti.runPk, taskId: outcome.ti.taskId, mapIndex: outcome.ti.mapIndex };
  try {
    for (const [key, value] of values) {
      const s = await storage.encode(value, { ...at, key });
      if (s.codec !== null) (outcome.stored ??= new Map()).set(key, s);
    }
    return outcome;
  } catch (err) {
    const message = `task "${op.taskId}" of DAG "${op.dagId}": its XCom value could not be stored in the ${storage.backend} XCom backend: ${(err as Error).message}`;
    return { ...outcome, state: TaskState.FAILED, result: undefined, pushes: [], stored: undefined, error: `XComStorageError: ${message}`,
      logs: [...outcome.logs, { ts: new Date(), level: 'error', message }] };
  }
}

/**
 * XCom pushes and deferral kwargs are stored as JSON too: one the database cannot take fails
 * this task with an error naming it, instead of failing the write of every TI in its batch.
 */
function checkStorable(op: BaseOperator, raw: Raw, pushes: [string, unknown][]): Raw {
  const checks: [unknown, string][] = pushes.map(([key, value]) => [value, `xcom_push("${key}")`]);
  if (!raw.ok && 'deferred' in raw) checks.push([raw.deferred.kwargs, 'defer() kwargs'], [raw.deferred.trigger.kwargs, `trigger ${raw.deferred.trigger.name} kwargs`]);
  for (const [value, at] of checks) {
    const problem = findJsonProblem(value, at);
    if (problem) {
      pushes.length = 0;
      return { ok: false, error: errorToData(new XComSerializationError(op.dagId, op.taskId, problem.at, problem.what)) };
    }
  }
  return raw;
}

/** What a try leaves besides its result: extra XComs and dataset events added at run time. */
interface Trail {
  pushes: [string, unknown][];
  outlets: OutletEventData[];
}

/** Events added before a deferral, from next_kwargs (JSON read back: checked here, at the edge). */
function carriedOutletEvents(ti: ClaimedTi): OutletEventData[] {
  if (ti.nextMethod === null) return [];
  const parsed = outletEventsSchema.safeParse((ti.nextKwargs as NextKwargs | null)?.outletEvents ?? []);
  return parsed.success ? parsed.data : [];
}

async function runOperator(op: BaseOperator, ti: ClaimedTi, run: RunInfo, dag: Dag, env: RunnerEnv, logs: LogBuffer, { pushes, outlets }: Trail,
  rendered: { value?: Record<string, unknown> }): Promise<Raw> {
  const controller = new AbortController();
  const stop = () => controller.abort(env.signal!.reason);
  env.signal?.addEventListener('abort', stop, { once: true });
  const timeoutMs = op.options.executionTimeout;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<Raw>((resolve) => {
    if (timeoutMs === null) return;
    // The budget covers the whole try, across deferrals: start_date is the try's first start.
    const left = Math.max(0, ti.startDate.getTime() + timeoutMs - Date.now());
    timer = setTimeout(() => {
      const err = new TaskTimeoutError(ti.dagId, ti.taskId, timeoutMs);
      controller.abort(err);
      resolve({ ok: false, error: errorToData(err) });
    }, left);
  });
  try {
    const next = (ti.nextKwargs ?? {}) as NextKwargs;
    const data: ContextData = {
      dagId: ti.dagId, runId: ti.runId, taskId: ti.taskId, mapIndex: ti.mapIndex, tryNumber: ti.tryNumber,
      logicalDate: run.logicalDate.toISOString(),
      dataIntervalStart: run.dataIntervalStart?.toISOString() ?? null,
      dataIntervalEnd: run.dataIntervalEnd?.toISOString() ?? null,
      params: dag.parseConf(run.conf), conf: run.conf,
      event: await resolveEvent(next.event, ti, env.database),
      resumeKwargs: next.kwargs ?? {},
      previousTry: ti.tryNumber > 1 && ti.nextMethod === null ? await previousTry(env.database.db, ti.id, ti.tryNumber) : null,
    };
    const inputs = await resolveOperatorInputs(env.database.db, ti.runPk, op, ti.mapIndex, ti.mapInput);
    const failure = next.failure ?? null;
    const xcomPull = (taskId: string, key: string, mapIndex: number) => readXCom(env.database.db, ti.runPk, taskId, key, mapIndex, xcomStorage().decode);
    const templated = op.templateFields.length ? await renderOperator(op, dag, data, run, env.lookups, xcomPull) : null;
    if (templated) {
      rendered.value = masker.maskValue(templated);
      logs.write('info', `rendered templates: ${JSON.stringify(rendered.value)}`);
    }
    const work: Promise<Raw> = op instanceof IterateOperator
      ? runIterate(op, ti, data, { database: env.database, syncPool: env.syncPool, lookups: env.lookups, fileloc: dag.fileloc, fileVersion: dag.fileVersion, signal: controller.signal, logs, pushes, outlets, xcomPull })
        .then((result): Raw => ({ ok: true, result }), (err): Raw => ({ ok: false, error: errorToData(err) }))
      : op.mode === 'async'
      ? runOnLoop(op, ti, data, inputs, failure, controller.signal, logs, { pushes, outlets }, xcomPull, env.lookups)
      : runInThread(dag, ti, data, inputs, failure, controller.signal, logs, { pushes, outlets }, xcomPull, env.syncPool, env.lookups, templated);
    return await Promise.race([work, timedOut]);
  } catch (err) {
    return { ok: false, error: errorToData(err) };
  } finally {
    env.signal?.removeEventListener('abort', stop);
    clearTimeout(timer);
  }
}

async function runOnLoop(op: BaseOperator, ti: ClaimedTi, data: ContextData, inputs: unknown, failure: DeferralFailure | null, signal: AbortSignal,
  logs: LogBuffer, { pushes, outlets }: Trail, xcomPull: (t: string, k: string, m: number) => Promise<unknown>, lookups: Lookups): Promise<Raw> {
  const context = buildContext(data, { signal, log: logs.logger(), xcomPush: (k, v) => pushes.push([k, v]), outletEvent: (e) => outlets.push(e), xcomPull, ...lookups });
  try {
    const result = await taskLogScope.run(logs, () => invokeOperator(op, context, inputs, ti.nextMethod, failure));
    const problem = findJsonProblem(result);
    if (problem) throw new XComSerializationError(op.dagId, op.taskId, problem.at, problem.what);
    return { ok: true, result };
  } catch (err) {
    if (isTaskRescheduled(err)) return { ok: false, rescheduled: err };
    if (isTaskDeferred(err)) {
      try {
        return { ok: false, deferred: deferralRequest(err) };
      } catch (invalid) {
        return { ok: false, error: errorToData(invalid) };
      }
    }
    return { ok: false, error: errorToData(err) };
  }
}

async function runInThread(dag: Dag, ti: ClaimedTi, data: ContextData, inputs: unknown, failure: DeferralFailure | null, signal: AbortSignal,
  logs: LogBuffer, { pushes, outlets }: Trail, xcomPull: (t: string, k: string, m: number) => Promise<unknown>, pool: SyncPool, lookups: Lookups,
  rendered: Record<string, unknown> | null): Promise<Raw> {
  try {
    const res = await pool.run({
      fileloc: dag.fileloc, fileVersion: dag.fileVersion, context: data, inputs, signal, xcomPull, lookups, rendered, nextMethod: ti.nextMethod, failure,
    });
    // The thread masks with what it knows; this process may know more secrets.
    logs.lines.push(...res.logs.map((l) => ({ ...l, message: masker.mask(l.message) })));
    pushes.push(...res.pushes);
    outlets.push(...res.outletEvents);
    for (const w of res.warnings) logs.write('warn', w);
    if (res.ok) return { ok: true, result: res.result };
    return 'deferred' in res ? { ok: false, deferred: res.deferred } : { ok: false, error: res.error };
  } catch (err) {
    // An aborted run means the thread was terminated; the timeout path already resolved.
    return { ok: false, error: errorToData(signal.aborted ? signal.reason : err) };
  }
}

/** A task whose output a downstream task maps over must produce a list, and not too long a one. */
function checkMapSource(op: BaseOperator, dag: Dag, raw: { ok: true; result: unknown }, maxMapLength: number): Raw {
  // A mapped producer's TIs each return one item; the fan-in list is checked when expanding.
  if (op instanceof MappedFunctionOperator) return raw;
  for (const consumer of op.downstreamIds) {
    const c = dag.tasks.get(consumer);
    if (!(c instanceof MappedFunctionOperator)) continue;
    // By id: `op` is a fresh copy, while the consumer's XComArg points at the DAG's instance.
    if (!findXComArgs(c.mapInputs()).some((r) => r.operator.taskId === op.taskId && r.key === 'return_value')) continue;
    const why = !Array.isArray(raw.result) ? `returned ${raw.result === null || raw.result === undefined ? 'nothing' : `a ${typeof raw.result}`}, but "${consumer}" maps over it and needs a list`
      : raw.result.length > maxMapLength ? `returned ${raw.result.length} items for "${consumer}" to map over, more than maxMapLength ${maxMapLength}; raise UPDRAFT_MAX_MAP_LENGTH or use iterate()`
        : null;
    if (why) return { ok: false, error: { ...errorToData(new TaskFailedNoRetry(`task "${op.taskId}" of DAG "${op.dagId}" ${why}`)), name: 'MapLengthExceeded' } };
  }
  return raw;
}

/**
 * A branch or short-circuit decides which downstream TIs to skip (into `skips`); a branch that
 * chose what it cannot follow fails. A falsy short-circuit result is not stored, as in Airflow.
 */
function decideBranch(dag: Dag, taskId: string, raw: { ok: true; result: unknown }, logs: LogBuffer, skips: string[]): Raw {
  const op = dag.task(taskId)!;
  const policy = skipPolicyOf(op);
  if (!policy) return raw;
  try {
    skips.push(...decideSkips(op, dag, raw.result));
  } catch (err) {
    return { ok: false, error: errorToData(err) };
  }
  if (policy.kind === 'branch') logs.write('info', `following ${JSON.stringify(raw.result ?? [])}; skipping ${skips.length ? skips.join(', ') : 'nothing'}`);
  else if (raw.result) logs.write('info', 'condition is true; downstream tasks proceed');
  else logs.write('info', `condition is false; skipping ${skips.length ? skips.join(', ') : 'nothing'}`);
  return policy.kind === 'shortCircuit' && !raw.result ? { ok: true, result: undefined } : raw;
}

/** Render the operator's templated fields onto this try's instance; returns what was rendered. */
async function renderOperator(op: BaseOperator, dag: Dag, data: ContextData, run: RunInfo, lookups: Lookups,
  xcom: (taskId: string, key: string, mapIndex: number) => Promise<unknown>): Promise<Record<string, unknown>> {
  const out = await renderTaskFields(op, dag, {
    dagId: data.dagId, taskId: data.taskId, runId: data.runId, mapIndex: data.mapIndex, tryNumber: data.tryNumber,
    logicalDate: run.logicalDate, dataIntervalStart: run.dataIntervalStart, dataIntervalEnd: run.dataIntervalEnd,
    params: data.params, conf: data.conf,
  }, lookups, xcom);
  Object.assign(op, out);
  return out;
}

async function resolveEvent(event: unknown, ti: ClaimedTi, database: Database): Promise<unknown> {
  if (event && typeof event === 'object' && EVENT_REF in event) {
    return readXCom(database.db, ti.runPk, ti.taskId, EVENT_XCOM_KEY, ti.mapIndex, xcomStorage().decode);
  }
  return event;
}

function toOutcome(ti: ClaimedTi, op: BaseOperator | undefined, run: RunInfo, raw: Raw, logs: LogBuffer, pushes: [string, unknown][]): TaskOutcome {
  const endDate = new Date();
  const base = { ti, pushes, endDate, nextRetryAt: null as Date | null, result: undefined as unknown, deferral: null };
  if (raw.ok) return { ...base, result: raw.result, state: TaskState.SUCCESS, error: null, logs: logs.drain() };
  if ('deferred' in raw) {
    const d = raw.deferred;
    const limits = [
      d.timeoutMs === null ? null : endDate.getTime() + d.timeoutMs,
      op?.options.executionTimeout == null ? null : ti.startDate.getTime() + op.options.executionTimeout,
    ].filter((x): x is number => x !== null);
    const triggerTimeout = limits.length ? new Date(Math.min(...limits)) : null;
    logs.write('info', `deferred on trigger ${d.trigger.name}; resumes in ${d.method}${triggerTimeout ? `, times out at ${triggerTimeout.toISOString()}` : ''}`);
    return { ...base, state: TaskState.DEFERRED, error: null, logs: logs.drain(), deferral: { ...d, triggerTimeout } };
  }
  if ('rescheduled' in raw) {
    const at = raw.rescheduled.rescheduleDate;
    logs.write('info', `not done yet; rescheduled to poke again at ${at.toISOString()}, freeing the slot`);
    return { ...base, state: TaskState.UP_FOR_RESCHEDULE, error: null, logs: logs.drain(), reschedule: { at, kwargs: raw.rescheduled.kwargs } };
  }
  const e = raw.error;
  if (e.skip) {
    logs.write('info', `skipped: ${e.message}`);
    return { ...base, state: TaskState.SKIPPED, error: null, logs: logs.drain() };
  }
  logs.write('error', e.stack ?? `${e.name}: ${e.message}`);
  const error = masker.mask(`${e.name}: ${e.message}`);
  const o = op?.options;
  const policy = o && { retries: o.retries, retryDelayMs: o.retryDelay, retryExponentialBackoff: o.retryExponentialBackoff, maxRetryDelayMs: o.maxRetryDelay };
  if (policy && e.retryable && shouldRetry(policy, ti.tryNumber)) {
    const delay = retryDelayMs(policy, ti.tryNumber, `${ti.dagId}#${ti.taskId}#${run.logicalDate.toISOString()}#${ti.tryNumber}`);
    logs.write('info', `try ${ti.tryNumber} of ${policy.retries + 1} failed; retrying in ${Math.round(delay / 100) / 10}s`);
    return { ...base, state: TaskState.UP_FOR_RETRY, error, nextRetryAt: new Date(endDate.getTime() + delay), logs: logs.drain() };
  }
  return { ...base, state: TaskState.FAILED, error, logs: logs.drain() };
}
