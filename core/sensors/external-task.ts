/**
 * ExternalTaskSensor: waits for a task of another DAG (or that DAG's whole run) at a related
 * logical date, by deferring to an ExternalTaskTrigger. `executionDelta` shifts the logical
 * date back, for DAGs on offset schedules, as in Airflow. A failed external state fails this
 * task without retries (waiting again would see the same state), or skips it with `softFail`.
 */
import { z } from 'zod';
import { BaseSensorOperator, type SensorOptions } from './base-sensor.ts';
import { ExternalTaskTrigger, type ExternalTaskEvent } from '../triggers/builtin/external-task.ts';
import { durationSchema, type Duration } from '../authoring/duration.ts';
import { formatZodIssues } from '../authoring/operator.ts';
import type { Context } from '../authoring/context.ts';
import { TaskFailedNoRetry, TaskFailure } from '../errors.ts';

export interface ExternalTaskSensorOptions extends SensorOptions {
  externalDagId: string;
  /** The task to wait for; null or omitted waits for the whole DAG run. */
  externalTaskId?: string | null;
  /** The external run's logical date is this run's minus this; default 0. */
  executionDelta?: Duration;
  /** Default ["success"]. */
  allowedStates?: string[];
  /** Default ["failed", "upstream_failed"]. */
  failedStates?: string[];
}

const eventSchema = z.object({ state: z.enum(['allowed', 'failed']), observed: z.string() });

export class ExternalTaskSensor extends BaseSensorOperator {
  readonly externalDagId: string;
  readonly externalTaskId: string | null;
  /** Milliseconds. */
  readonly executionDelta: number;
  readonly allowedStates: string[] | undefined;
  readonly failedStates: string[] | undefined;

  constructor(options: ExternalTaskSensorOptions) {
    const { externalDagId, externalTaskId, executionDelta, allowedStates, failedStates, ...rest } = options;
    super(rest);
    const delta = durationSchema.safeParse(executionDelta ?? 0);
    if (!delta.success) throw this.invalid(`executionDelta: ${delta.error.issues.map((i) => i.message).join('; ')}`);
    this.externalDagId = externalDagId;
    this.externalTaskId = externalTaskId ?? null;
    this.executionDelta = delta.data;
    this.allowedStates = allowedStates;
    this.failedStates = failedStates;
    // Check the trigger's kwargs now, so a typo in a state fails the DAG import, not the run.
    const probe = ExternalTaskTrigger.kwargsSchema.safeParse(this.trigger(new Date(0)).kwargs);
    if (!probe.success) throw this.invalid(formatZodIssues(probe.error));
    if (externalDagId === this.dagId && this.externalTaskId === this.taskId && this.executionDelta === 0) {
      throw this.invalid('an ExternalTaskSensor cannot wait for itself (same DAG, task and logical date)');
    }
  }

  async execute(context: Context): Promise<never> {
    return this.deferTo(this.trigger(new Date(context.logicalDate.getTime() - this.executionDelta)));
  }

  /** The observed external state, or a no-retry failure (skip with softFail) on a failed one. */
  executeComplete(context: Context, event: unknown = context.event): string {
    const parsed = eventSchema.safeParse(event);
    if (!parsed.success) {
      throw new TaskFailure(`sensor "${this.taskId}" of DAG "${this.dagId}" resumed with an unexpected event ${JSON.stringify(event)}; expected { state, observed } from ${ExternalTaskTrigger.triggerName}`);
    }
    const result: ExternalTaskEvent = parsed.data;
    if (result.state === 'allowed') return result.observed;
    const logicalDate = new Date(context.logicalDate.getTime() - this.executionDelta).toISOString();
    const what = this.externalTaskId === null
      ? `the run of DAG "${this.externalDagId}" at logical date ${logicalDate}`
      : `task "${this.externalTaskId}" of DAG "${this.externalDagId}" at logical date ${logicalDate}`;
    const why = `${what} ended in state "${result.observed}"`;
    if (this.softFail) throw this.skipped(why);
    throw new TaskFailedNoRetry(`sensor "${this.taskId}" of DAG "${this.dagId}" failed: ${why}`);
  }

  private trigger(logicalDate: Date): ExternalTaskTrigger {
    return new ExternalTaskTrigger({
      dagId: this.externalDagId,
      taskId: this.externalTaskId,
      logicalDate: logicalDate.toISOString(),
      pokeIntervalMs: this.pokeInterval,
      ...(this.allowedStates ? { allowedStates: this.allowedStates } : {}),
      ...(this.failedStates ? { failedStates: this.failedStates } : {}),
    });
  }
}
