/**
 * Calling into an operator, the same way on the event loop and in a thread: a fresh try
 * calls `run`; a resume calls the method named at deferral with (context, event, kwargs);
 * the failure path hands a TaskDeferralError/Timeout to `onDeferralFailure`. A TaskDeferred
 * thrown from any of them is turned into plain deferral data here.
 */
import type { BaseOperator } from '../authoring/operator.ts';
import type { Context } from '../authoring/context.ts';
import { FAIL_METHOD, TaskDeferred } from '../authoring/deferral.ts';
import { RESCHEDULE_METHOD } from '../authoring/reschedule.ts';
import { FunctionOperator } from '../authoring/function-task.ts';
import { parseDuration } from '../authoring/duration.ts';
import { serializeTrigger } from '../triggers/registry.ts';
import type { SerializedTrigger } from '../triggers/base-trigger.ts';
import { TaskDeferralError, TaskDeferralTimeout, TaskFailedNoRetry } from '../errors.ts';

export interface DeferralFailure {
  kind: 'timeout' | 'error';
  message: string;
  retryable: boolean;
}

export interface DeferralRequest {
  trigger: SerializedTrigger;
  method: string;
  kwargs: Record<string, unknown>;
  timeoutMs: number | null;
}

export function invokeOperator(op: BaseOperator, context: Context, inputs: unknown, nextMethod: string | null, failure: DeferralFailure | null): unknown {
  if (!nextMethod || nextMethod === RESCHEDULE_METHOD || (op instanceof FunctionOperator && nextMethod !== FAIL_METHOD)) return op.run(context, inputs);
  if (nextMethod === FAIL_METHOD) {
    const f = failure ?? { kind: 'error', message: 'the trigger failed', retryable: true };
    const err = f.kind === 'timeout' ? new TaskDeferralTimeout(f.message) : f.retryable ? new TaskDeferralError(f.message) : new TaskFailedNoRetry(f.message);
    return op.onDeferralFailure(context, err);
  }
  const method = (op as unknown as Record<string, unknown>)[nextMethod];
  if (typeof method !== 'function') {
    throw new TaskFailedNoRetry(`operator ${op.operatorName} (task "${op.taskId}") has no method "${nextMethod}" to resume in; its deferral named it`);
  }
  return (method as (c: Context, e: unknown, k: Record<string, unknown>) => unknown).call(op, context, context.event, context.resumeKwargs);
}

/** Plain data for a deferral (validates the trigger's kwargs through the registry). */
export function deferralRequest(signal: TaskDeferred): DeferralRequest {
  const o = signal.options;
  const timeoutMs = o.timeout === undefined || o.timeout === null ? null : typeof o.timeout === 'number' ? o.timeout : parseDuration(o.timeout);
  if (timeoutMs === null && o.timeout !== undefined && o.timeout !== null) {
    throw new TaskFailedNoRetry(`defer() timeout "${String(o.timeout)}" is not a duration; use milliseconds or a string like "30s"`);
  }
  return { trigger: serializeTrigger(o.trigger), method: o.method ?? 'executeComplete', kwargs: o.kwargs ?? {}, timeoutMs };
}

export function isTaskDeferred(value: unknown): value is TaskDeferred {
  return value instanceof TaskDeferred || (value as { name?: string } | null)?.name === 'TaskDeferred';
}
