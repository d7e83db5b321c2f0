/**
 * Rescheduling is a signal, like deferral: a sensor in reschedule mode raises `TaskRescheduled`
 * when its condition is not met yet. The worker records the TI as `up_for_reschedule` with a
 * `reschedule_date`, frees the slot, and the scheduler puts it back to `scheduled` when that
 * time comes; the next poke continues the same try (its start date and try number are kept).
 */

/** The `next_method` of a rescheduled TI: its next claim calls `execute` again, same try. */
export const RESCHEDULE_METHOD = '__reschedule__';

export class TaskRescheduled {
  readonly name = 'TaskRescheduled';
  /**
   * @param rescheduleDate when to poke again
   * @param kwargs what the next poke reads back as `context.resumeKwargs` (JSON)
   */
  constructor(readonly rescheduleDate: Date, readonly kwargs: Record<string, unknown> = {}) {}
}

export function isTaskRescheduled(value: unknown): value is TaskRescheduled {
  return value instanceof TaskRescheduled || (value as { name?: string } | null)?.name === 'TaskRescheduled';
}
