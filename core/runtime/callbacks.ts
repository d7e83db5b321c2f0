/**
 * Running task and DAG callbacks on a worker. After a try the worker ran, `afterTry` calls the
 * callback its outcome names (success, failure, retry, skipped) and adds what it logs to the
 * try's log; `onExecuteCallback` runs before the task. `CallbackQueue` runs what the scheduler
 * queued in `callback_requests` (a zombie's failure or retry, a finished run's callback). A
 * callback that throws is logged where its lines go and never changes a state.
 */
import { format } from 'node:util';
import type { Dag } from '../authoring/dag.ts';
import type { BaseOperator } from '../authoring/operator.ts';
import type { ContextData, TaskLogger } from '../authoring/context.ts';
import { CALLBACK_OPTION, callbackList, CallbackKind, type DagRunContext, type TaskCallback } from '../authoring/callbacks.ts';
import type { Database } from '../db/client.ts';
import { readXCom } from '../db/queries/xcom.ts';
import { TaskState } from '../model/states.ts';
import { xcomStorage } from '../xcom/storage.ts';
import { buildContext, type Lookups } from './task-context.ts';
import { LogBuffer, taskLogScope } from './task-log.ts';
import type { RunInfo } from './task-runner.ts';

/** The callback a TI's new state calls for, if any. */
export function callbackKindFor(state: string): CallbackKind | null {
  switch (state) {
    case TaskState.SUCCESS: return CallbackKind.SUCCESS;
    case TaskState.FAILED: return CallbackKind.FAILURE;
    case TaskState.UP_FOR_RETRY: return CallbackKind.RETRY;
    case TaskState.SKIPPED: return CallbackKind.SKIPPED;
    default: return null;
  }
}

export function taskCallbacks(op: BaseOperator, kind: CallbackKind): readonly TaskCallback[] {
  return callbackList(op.options[CALLBACK_OPTION[kind]] as TaskCallback | TaskCallback[] | undefined);
}

/** An error recorded as "Name: message", rebuilt for a callback. */
export function errorFromText(text: string | null): Error | undefined {
  if (text === null) return undefined;
  const m = /^([A-Za-z_$][\w$]*): ([\s\S]*)$/.exec(text);
  const err = new Error(m ? m[2] : text);
  if (m) err.name = m[1];
  return err;
}

export interface TiIdentity {
  dagId: string;
  runId: string;
  taskId: string;
  mapIndex: number;
  tryNumber: number;
  runPk: number;
}

export interface CallbackEnv {
  database: Database;
  lookups: Lookups;
}

/** The run's params; a conf the schema refuses is passed as it is (the callback still runs). */
function paramsOf(dag: Dag, conf: Record<string, unknown>): Record<string, unknown> {
  try {
    return dag.parseConf(conf);
  } catch {
    return conf;
  }
}

/** A callback's context: the TI's, with XCom reads, connections and variables; no pushes. */
function callbackContextData(ti: TiIdentity, run: RunInfo, dag: Dag): ContextData {
  const params = paramsOf(dag, run.conf);
  return {
    dagId: ti.dagId, runId: ti.runId, taskId: ti.taskId, mapIndex: ti.mapIndex, tryNumber: ti.tryNumber,
    logicalDate: run.logicalDate.toISOString(), dataIntervalStart: run.dataIntervalStart?.toISOString() ?? null,
    dataIntervalEnd: run.dataIntervalEnd?.toISOString() ?? null, params, conf: run.conf,
  };
}

const notHere = (what: string) => () => {
  throw new Error(`${what} is not available in a callback; the task's try is over`);
};

/** After a try the worker ran: the callback its outcome calls for, its lines added to the try's log. */
export async function afterTry(op: BaseOperator, outcome: { state: string; error: string | null; logs: { ts: Date; level: LogBuffer['lines'][number]['level']; message: string }[] },
  ti: TiIdentity, run: RunInfo, dag: Dag, env: CallbackEnv): Promise<void> {
  const kind = callbackKindFor(outcome.state);
  if (!kind || !taskCallbacks(op, kind).length) return;
  const logs = new LogBuffer();
  await runTaskCallbacks(op, kind, ti, run, dag, env, logs, errorFromText(outcome.error));
  outcome.logs.push(...logs.drain());
}

/** Call `kind`'s callbacks of `op`, in order; each failure is logged to `logs` and swallowed. */
export async function runTaskCallbacks(op: BaseOperator, kind: CallbackKind, ti: TiIdentity, run: RunInfo, dag: Dag, env: CallbackEnv,
  logs: LogBuffer, error?: Error): Promise<void> {
  const fns = taskCallbacks(op, kind);
  if (!fns.length) return;
  const context = buildContext(callbackContextData(ti, run, dag), {
    signal: new AbortController().signal, log: logs.logger(), xcomPush: notHere('xcomPush'), outletEvent: notHere('outletEvents.add'),
    xcomPull: (taskId, key, mapIndex) => readXCom(env.database.db, ti.runPk, taskId, key, mapIndex, xcomStorage().decode),
    ...env.lookups,
  });
  for (const fn of fns) {
    try {
      // console.* inside the callback lands in the TI's log too.
      await taskLogScope.run(logs, () => fn(context, error));
    } catch (err) {
      logs.write('error', `${CALLBACK_OPTION[kind]} of task "${ti.taskId}" failed; the task's state is unchanged: ${(err as Error)?.stack ?? String(err)}`);
    }
  }
}

/** Call a run's callbacks for its final state; failures go to `log`. */
export async function runDagCallbacks(dag: Dag, state: 'success' | 'failed', runId: string, run: RunInfo, log: (message: string) => void): Promise<void> {
  const fns = dag.runCallbacks[state];
  if (!fns.length) return;
  const line = (level: string) => (message: string, ...args: unknown[]) => log(`[${dag.dagId} ${runId}] ${level}: ${args.length ? format(message, ...args) : message}`);
  const logger: TaskLogger = { info: line('info'), warn: line('warn'), error: line('error'), debug: line('debug') };
  const params = paramsOf(dag, run.conf);
  const context: DagRunContext = {
    dagId: dag.dagId, runId, logicalDate: run.logicalDate, dataIntervalStart: run.dataIntervalStart, dataIntervalEnd: run.dataIntervalEnd,
    conf: run.conf, params, state, reason: state === 'success' ? 'success' : 'task_failure', log: logger,
  };
  for (const fn of fns) {
    try {
      await fn(context);
    } catch (err) {
      logger.error(`${state === 'success' ? 'onSuccessCallback' : 'onFailureCallback'} of DAG "${dag.dagId}" failed: ${(err as Error)?.stack ?? String(err)}`);
    }
  }
}
