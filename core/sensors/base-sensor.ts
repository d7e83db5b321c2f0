/**
 * BaseSensorOperator: a task that waits for a condition by deferring to a trigger, so it holds
 * no worker slot while it waits. It owns the sensor-only options (`softFail`, `timeout`,
 * `pokeInterval`) and what a failed wait means: as in Airflow, a timed-out wait fails without
 * retrying (`SensorTimeout`), any other trigger failure goes through the retry policy, and with
 * `softFail` either one ends the task as skipped instead.
 */
import { z } from 'zod';
import { BaseOperator, formatZodIssues, type TaskOptions } from '../authoring/operator.ts';
import { durationSchema, type Duration } from '../authoring/duration.ts';
import type { Context } from '../authoring/context.ts';
import type { BaseTrigger } from '../triggers/base-trigger.ts';
import { DagDefinitionError, TaskDeferralTimeout, TaskFailedNoRetry, TaskSkipped } from '../errors.ts';
import { MIN_POKE_INTERVAL_MS } from '../triggers/builtin/date-time.ts';

/** Airflow's sensor timeout: seven days. */
export const DEFAULT_SENSOR_TIMEOUT_MS = 7 * 24 * 3_600_000;
export const DEFAULT_POKE_INTERVAL_MS = 60_000;

export interface SensorOptions extends TaskOptions {
  /** End as skipped, not failed, when the wait fails or times out. */
  softFail?: boolean;
  /** Give up waiting after this long; default 7 days. */
  timeout?: Duration;
  /** How often polling triggers check; default 60 s. */
  pokeInterval?: Duration;
}

const sensorOptionsSchema = z.object({
  softFail: z.boolean().default(false),
  timeout: durationSchema.default(DEFAULT_SENSOR_TIMEOUT_MS),
  pokeInterval: durationSchema
    .default(DEFAULT_POKE_INTERVAL_MS)
    .refine((ms) => ms >= MIN_POKE_INTERVAL_MS, `must be at least ${MIN_POKE_INTERVAL_MS} ms; shorter intervals poll close to a busy loop`),
}).strict();

/** A sensor's wait timed out (Airflow's AirflowSensorTimeout): retrying would wait again for nothing. */
export class SensorTimeout extends TaskFailedNoRetry {}

/** Keep BaseOperator's strict option schema seeing only the options it knows. */
function taskOptionsOf(options: SensorOptions): TaskOptions {
  const { softFail: _s, timeout: _t, pokeInterval: _p, ...rest } = options ?? ({} as SensorOptions);
  return rest;
}

export abstract class BaseSensorOperator extends BaseOperator {
  readonly softFail: boolean;
  /** Milliseconds. */
  readonly timeout: number;
  /** Milliseconds. */
  readonly pokeInterval: number;

  constructor(options: SensorOptions) {
    super(taskOptionsOf(options));
    const parsed = sensorOptionsSchema.safeParse({
      softFail: options.softFail,
      timeout: options.timeout,
      pokeInterval: options.pokeInterval,
    });
    if (!parsed.success) throw this.invalid(formatZodIssues(parsed.error));
    this.softFail = parsed.data.softFail;
    this.timeout = parsed.data.timeout;
    this.pokeInterval = parsed.data.pokeInterval;
  }

  /** Sensors wait on the worker's event loop: deferring needs no thread. */
  abstract override execute(context: Context): Promise<unknown>;

  /** Resumed here with the trigger's payload once it fires. */
  abstract executeComplete(context: Context, event?: unknown): unknown;

  /** Defer to `trigger`, resuming in `executeComplete`, for at most `timeout`. */
  protected deferTo(trigger: BaseTrigger<any>, kwargs?: Record<string, unknown>): never {
    return this.defer({ trigger, method: 'executeComplete', timeout: this.timeout, ...(kwargs ? { kwargs } : {}) });
  }

  override onDeferralFailure(_context: Context, error: Error): never {
    if (this.softFail) throw this.skipped(`its wait failed: ${error.message}`, error);
    if (error instanceof TaskDeferralTimeout) {
      throw new SensorTimeout(`sensor "${this.taskId}" of DAG "${this.dagId}" timed out: ${error.message}`, { cause: error });
    }
    throw error;
  }

  /** A TaskSkipped naming this sensor, with the original error kept as cause. */
  protected skipped(why: string, cause?: unknown): TaskSkipped {
    return new TaskSkipped(`sensor "${this.taskId}" of DAG "${this.dagId}" skipped (softFail) because ${why}`, { cause });
  }

  /** An authoring mistake in this sensor's arguments, reported at DAG import. */
  protected invalid(message: string): DagDefinitionError {
    return new DagDefinitionError(this.dagId, `invalid options: ${message}`, this.taskId);
  }
}
