/**
 * Builds the Context a task receives from plain run data plus the runtime's hooks. Shared by
 * the event-loop path and the thread path, so both see exactly the same shape.
 */
import type { Context, ContextData, DagRunControl, TaskLogger, VariableOptions } from '../authoring/context.ts';
import { TaskDeferred } from '../authoring/deferral.ts';
import type { Connection } from '../connections/connection.ts';
import { VariableNotFoundError } from '../errors.ts';
import { outletEvent, type OutletEventData } from '../authoring/dataset.ts';

/** Where a task's connections and variables come from (the process's Secrets). */
export interface Lookups {
  /** On a worker: other DAGs' runs, for TriggerDagRunOperator. */
  dagRuns?: DagRunControl;
  connection(connId: string): Promise<Connection>;
  variable(key: string): Promise<string | undefined>;
}

export interface ContextHooks {
  signal: AbortSignal;
  log: TaskLogger;
  xcomPush(key: string, value: unknown): void;
  xcomPull(taskId: string, key: string, mapIndex: number): Promise<unknown>;
  /** A vetted dataset event from `ctx.outletEvents.add`. */
  outletEvent(event: OutletEventData): void;
  connection(connId: string): Promise<Connection>;
  variable(key: string): Promise<string | undefined>;
  /** Only where a blocking call is possible (a worker thread). */
  connectionSync?(connId: string): Connection;
  variableSync?(key: string): string | undefined;
  dagRuns?: DagRunControl;
}

/** A raw variable value as the caller asked for it. */
export function variableValue<T>(key: string, raw: string | undefined, options: VariableOptions<T> = {}): T {
  if (raw === undefined) {
    if ('default' in options) return options.default as T;
    throw new VariableNotFoundError(key);
  }
  if (!options.json) return raw as T;
  try {
    return JSON.parse(raw) as T;
  } catch (err) {
    throw new VariableNotFoundError(key, `its value is not JSON (${(err as Error).message}); read it without { json: true }`);
  }
}

const noSync = (what: string) => (): never => {
  throw new Error(`${what}Sync() is for sync tasks, which run in a worker thread; in an async task use \`await ctx.${what}()\``);
};

export function buildContext(data: ContextData, hooks: ContextHooks): Context {
  const date = (s: string | null) => (s === null ? null : new Date(s));
  return {
    dagId: data.dagId,
    runId: data.runId,
    taskId: data.taskId,
    mapIndex: data.mapIndex,
    tryNumber: data.tryNumber,
    logicalDate: new Date(data.logicalDate),
    dataIntervalStart: date(data.dataIntervalStart),
    dataIntervalEnd: date(data.dataIntervalEnd),
    params: data.params,
    conf: data.conf,
    signal: hooks.signal,
    log: hooks.log,
    outletEvents: { add: (target, extra) => hooks.outletEvent(outletEvent(target, extra, data)) },
    event: data.event,
    resumeKwargs: data.resumeKwargs ?? {},
    previousTry: data.previousTry ?? null,
    connection: (connId) => hooks.connection(connId),
    variable: async (key, options) => variableValue(key, await hooks.variable(key), options),
    connectionSync: hooks.connectionSync ?? noSync('connection'),
    ...(hooks.dagRuns ? { dagRuns: hooks.dagRuns } : {}),
    variableSync: (key, options) => variableValue(key, (hooks.variableSync ?? noSync('variable'))(key), options),
    defer: (options) => {
      throw new TaskDeferred(options);
    },
    ti: {
      dagId: data.dagId,
      runId: data.runId,
      taskId: data.taskId,
      mapIndex: data.mapIndex,
      tryNumber: data.tryNumber,
      xcomPush: (key, value) => {
        if (key === 'return_value') throw new Error('the key "return_value" is reserved for the task\'s return value');
        hooks.xcomPush(key, value);
      },
      xcomPull: async <T,>(taskId: string, key = 'return_value', mapIndex = -1) => (await hooks.xcomPull(taskId, key, mapIndex)) as T | undefined,
    },
  };
}

/** An error as plain data, so it survives a thread boundary with its class name and flags. */
export interface ErrorData {
  name: string;
  message: string;
  stack: string | null;
  retryable: boolean;
  skip: boolean;
}

export function errorToData(err: unknown): ErrorData {
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    name: e.name,
    message: e.message,
    stack: e.stack ?? null,
    retryable: (e as { retryable?: boolean }).retryable !== false,
    skip: e.name === 'TaskSkipped',
  };
}
