/**
 * Task and DAG callbacks, Airflow's `on_*_callback`: functions a DAG file attaches to a task
 * (or to `defaultArgs`) and to a DAG. They run on a worker, with the DAG loaded: right after a
 * try the worker ran, or, for a TI the scheduler failed (a zombie) and for a finished run, from
 * the `callback_requests` queue. A callback that throws is logged and changes no state.
 */
import { z } from 'zod';
import type { Context, TaskLogger } from './context.ts';

/** A task callback: the TI's context, and for failure and retry the error. */
export type TaskCallback = (context: Context, error?: Error) => unknown;
/** One callback or several, called in order. */
export type TaskCallbacks = TaskCallback | readonly TaskCallback[];

/** Which task callback: the TI's outcome it follows (or 'execute', before the task runs). */
export const CallbackKind = {
  SUCCESS: 'success', FAILURE: 'failure', RETRY: 'retry', SKIPPED: 'skipped', EXECUTE: 'execute',
} as const;
export type CallbackKind = (typeof CallbackKind)[keyof typeof CallbackKind];

/** The TaskOptions key of each kind. */
export const CALLBACK_OPTION = {
  success: 'onSuccessCallback', failure: 'onFailureCallback', retry: 'onRetryCallback',
  skipped: 'onSkippedCallback', execute: 'onExecuteCallback',
} as const satisfies Record<CallbackKind, string>;

/** What a DAG's run callback receives. */
export interface DagRunContext<P = Record<string, unknown>> {
  readonly dagId: string;
  readonly runId: string;
  readonly logicalDate: Date;
  readonly dataIntervalStart: Date | null;
  readonly dataIntervalEnd: Date | null;
  readonly conf: Record<string, unknown>;
  readonly params: P;
  /** The run's final state. */
  readonly state: 'success' | 'failed';
  /** Airflow's reason: 'success', or 'task_failure' when a task failed the run. */
  readonly reason: 'success' | 'task_failure';
  /** Lines go to the worker's log. */
  readonly log: TaskLogger;
}

export type DagCallback = (context: DagRunContext) => unknown;
export type DagCallbacks = DagCallback | readonly DagCallback[];

const fn = z.custom<(...args: any[]) => unknown>((v) => typeof v === 'function', 'a callback is a function or a list of functions');
export const callbacksSchema = z.union([fn, z.array(fn)]).optional();

/** A callback option as a list (empty when not set). */
export function callbackList<F>(value: F | readonly F[] | undefined): readonly F[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? (value as readonly F[]) : [value as F];
}
