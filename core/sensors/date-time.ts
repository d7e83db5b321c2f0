/**
 * Time sensors. `DateTimeSensor` waits until a target time (fixed, or computed from the run's
 * context); `TimeDeltaSensor` waits until a delta after the run's data interval ends. Both defer
 * to a DateTimeTrigger holding the absolute moment, and succeed at once, without deferring,
 * when that moment has already passed.
 */
import { BaseSensorOperator, type SensorOptions } from './base-sensor.ts';
import { DateTimeTrigger, isoInstantSchema } from '../triggers/builtin/date-time.ts';
import { durationSchema, type Duration } from '../authoring/duration.ts';
import type { Context } from '../authoring/context.ts';
import { TaskFailedNoRetry } from '../errors.ts';

abstract class DateTimeSensorBase extends BaseSensorOperator {
  abstract targetFor(context: Context): Date;

  /** Succeed now if the target passed (a late or backfilled run), else defer until it. */
  async execute(context: Context): Promise<undefined> {
    const target = this.targetFor(context);
    if (target.getTime() <= Date.now()) return undefined;
    return this.deferTo(new DateTimeTrigger({ moment: target }));
  }

  /** Nothing to return: the time has come (Airflow returns None too). */
  executeComplete(_context: Context, _event?: unknown): undefined {
    return undefined;
  }
}

export type TargetTime = Date | string | ((context: Context) => Date);

export interface DateTimeSensorOptions extends SensorOptions {
  /** A Date, an ISO 8601 instant with a zone, or a function of the run's context. */
  targetTime: TargetTime;
}

/** Waits until `targetTime` (Airflow's DateTimeSensorAsync). */
export class DateTimeSensor extends DateTimeSensorBase {
  readonly targetTime: Date | ((context: Context) => Date);

  constructor(options: DateTimeSensorOptions) {
    const { targetTime, ...rest } = options;
    super(rest);
    this.targetTime = this.checkTarget(targetTime);
  }

  targetFor(context: Context): Date {
    if (typeof this.targetTime !== 'function') return this.targetTime;
    const target = this.targetTime(context);
    if (!(target instanceof Date) || Number.isNaN(target.getTime())) {
      throw new TaskFailedNoRetry(`sensor "${this.taskId}" of DAG "${this.dagId}": targetTime function returned ${String(target)}, not a valid Date`);
    }
    return target;
  }

  private checkTarget(target: TargetTime): Date | ((context: Context) => Date) {
    if (typeof target === 'function') return target;
    if (typeof target === 'string') {
      if (!isoInstantSchema.safeParse(target).success) {
        throw this.invalid(`targetTime "${target}" is not an ISO 8601 instant with a zone, e.g. "2024-01-01T06:00:00Z"`);
      }
      return new Date(target);
    }
    if (target instanceof Date && !Number.isNaN(target.getTime())) return target;
    throw this.invalid('targetTime must be a Date, an ISO 8601 string or a function of the context');
  }
}

export interface TimeDeltaSensorOptions extends SensorOptions {
  /** Wait this long after the data interval ends (after the logical date for manual runs). */
  delta: Duration;
}

/** Waits until data_interval_end + delta (Airflow's TimeDeltaSensorAsync). */
export class TimeDeltaSensor extends DateTimeSensorBase {
  /** Milliseconds. */
  readonly delta: number;

  constructor(options: TimeDeltaSensorOptions) {
    const { delta, ...rest } = options;
    super(rest);
    const parsed = durationSchema.safeParse(delta);
    if (!parsed.success) throw this.invalid(`delta: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
    this.delta = parsed.data;
  }

  targetFor(context: Context): Date {
    // Manual runs have no data interval; Airflow falls back to the logical date there too.
    const base = context.dataIntervalEnd ?? context.logicalDate;
    return new Date(base.getTime() + this.delta);
  }
}
