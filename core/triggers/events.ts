/**
 * What a trigger yields. `TriggerEvent` resumes the waiting task with its payload;
 * `TaskSuccessEvent` and `TaskFailedEvent` end the task in the triggerer, with no worker.
 * Payloads are JSON and must be deterministic, so duplicates from redundant triggerers agree.
 */

export class TriggerEvent<P = unknown> {
  readonly kind: 'event' | 'success' | 'failed' = 'event';
  constructor(readonly payload: P) {}
}

/** End the task as success; `xcoms` are stored as its XComs (`return_value` included). */
export class TaskSuccessEvent extends TriggerEvent<Record<string, unknown>> {
  override readonly kind = 'success' as const;
  constructor(readonly xcoms: Record<string, unknown> = {}) {
    super(xcoms);
  }
}

/** End the task as failed, in the triggerer, without retries (as Airflow's end-from-trigger does). */
export class TaskFailedEvent extends TriggerEvent<{ error: string }> {
  override readonly kind = 'failed' as const;
  constructor(readonly error: string, readonly xcoms: Record<string, unknown> = {}) {
    super({ error });
  }
}
