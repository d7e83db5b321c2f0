/**
 * Builds the Context a task receives from plain run data plus the runtime's hooks. Shared by
 * the event-loop path and the thread path, so both see exactly the same shape.
 */
import type { Context, ContextData, TaskLogger } from '../authoring/context.ts';
import { TaskDeferred } from '../authoring/deferral.ts';

export interface ContextHooks {
  signal: AbortSignal;
  log: TaskLogger;
  xcomPush(key: string, value: unknown): void;
  xcomPull(taskId: string, key: string, mapIndex: number): Promise<unknown>;
}

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
    event: data.event,
    resumeKwargs: data.resumeKwargs ?? {},
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
