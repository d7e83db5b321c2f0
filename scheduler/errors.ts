/** Errors raised by the scheduler service. */
import { UpdraftError } from '../core/index.ts';

export class SchedulerError extends UpdraftError {}
