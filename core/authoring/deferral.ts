/**
 * Deferral is a signal, not an error: `TaskDeferred` does not extend Error, so a catch that
 * logs and fails on `instanceof Error` lets it through. A task raises it (through
 * `this.defer(...)` or `ctx.defer(...)`) from any depth of its code; the worker then persists
 * the trigger, parks the TI as `deferred` and frees the slot.
 */
import type { BaseTrigger } from '../triggers/base-trigger.ts';
import type { Duration } from './duration.ts';

export interface DeferOptions {
  trigger: BaseTrigger<any>;
  /** Method to resume in on a fresh operator instance; default "executeComplete". */
  method?: string;
  /** Extra arguments for that method (JSON). */
  kwargs?: Record<string, unknown>;
  /** Give up waiting after this long (clamped by the task's executionTimeout). */
  timeout?: Duration | null;
}

export class TaskDeferred {
  readonly name = 'TaskDeferred';
  constructor(readonly options: DeferOptions) {}
}

/** Method name that means "the trigger failed or timed out": it raises on the worker. */
export const FAIL_METHOD = '__fail__';
