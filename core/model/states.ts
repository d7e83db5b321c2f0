/**
 * Task-instance and DAG-run states. Airflow's names, so its users read them at a glance.
 * Updraft has no separate "queued" TI state: workers pull `scheduled` TIs directly.
 */

export const TaskState = {
  NONE: 'none',
  SCHEDULED: 'scheduled',
  RUNNING: 'running',
  DEFERRED: 'deferred',
  UP_FOR_RETRY: 'up_for_retry',
  /** A sensor in reschedule mode between pokes: holds no slot, comes back at reschedule_date. */
  UP_FOR_RESCHEDULE: 'up_for_reschedule',
  SUCCESS: 'success',
  FAILED: 'failed',
  SKIPPED: 'skipped',
  UPSTREAM_FAILED: 'upstream_failed',
  REMOVED: 'removed',
} as const;
export type TaskState = (typeof TaskState)[keyof typeof TaskState];

export const FINISHED_TASK_STATES: readonly TaskState[] = [
  TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED, TaskState.UPSTREAM_FAILED, TaskState.REMOVED,
];

export const RunState = {
  QUEUED: 'queued',
  RUNNING: 'running',
  SUCCESS: 'success',
  FAILED: 'failed',
} as const;
export type RunState = (typeof RunState)[keyof typeof RunState];

export const RunType = { SCHEDULED: 'scheduled', MANUAL: 'manual', DATASET_TRIGGERED: 'dataset_triggered', BACKFILL: 'backfill' } as const;
export type RunType = (typeof RunType)[keyof typeof RunType];

export const JobType = { SCHEDULER: 'scheduler', WORKER: 'worker', TRIGGERER: 'triggerer' } as const;
export type JobType = (typeof JobType)[keyof typeof JobType];
