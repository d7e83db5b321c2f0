/** The scheduler service's public entry point. */
export { Scheduler, type SchedulerOptions } from './scheduler.ts';
export { SchedulerError } from './errors.ts';
