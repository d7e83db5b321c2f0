/**
 * TriggerDagRunOperator: queues a run of another DAG with a `conf` and a run id (both
 * templated), pushes its run id as the XCom `trigger_run_id`, and optionally waits for it to
 * end. The wait holds the slot and polls (`deferrable: false`) or defers to a
 * DagRunStateTrigger in the triggerer (`deferrable: true`), holding no slot. A run ending in a
 * `failedStates` state fails this task; an unknown DAG id fails it without retries.
 */
import { z } from 'zod';
import { BaseOperator, baseOptions, formatZodIssues, type TaskOptions } from '../authoring/operator.ts';
import { durationSchema, type Duration } from '../authoring/duration.ts';
import type { Context } from '../authoring/context.ts';
import { DagDefinitionError, TaskFailedNoRetry, TaskFailure, UnknownDagError } from '../errors.ts';
import { RunState } from '../model/states.ts';
import { DagRunStateTrigger, type DagRunStateEvent } from '../triggers/builtin/dag-run-state.ts';
import { sleep } from '../triggers/builtin/date-time.ts';

export interface TriggerDagRunOperatorOptions extends TaskOptions {
  /** The DAG to trigger (templated). */
  triggerDagId: string;
  /** The new run's id (templated); default `manual__<now>`. */
  triggerRunId?: string;
  /** The new run's conf (templated), checked by that DAG's params schema. */
  conf?: Record<string, unknown>;
  /** Wait until the run is in one of `allowedStates` or `failedStates`. */
  waitForCompletion?: boolean;
  /** Default ['success']. */
  allowedStates?: RunState[];
  /** Default ['failed']. */
  failedStates?: RunState[];
  /** How often the wait checks the run's state; default 60 s. */
  pokeInterval?: Duration;
  /** Wait in the triggerer instead of holding a worker slot. */
  deferrable?: boolean;
}

const OWN_KEYS = ['triggerDagId', 'triggerRunId', 'conf', 'waitForCompletion', 'allowedStates', 'failedStates', 'pokeInterval', 'deferrable'] as const;
const states = z.array(z.enum(Object.values(RunState) as [RunState, ...RunState[]]));

const ownSchema = z.object({
  triggerDagId: z.string().min(1),
  triggerRunId: z.string().min(1).optional(),
  conf: z.record(z.string(), z.unknown()).default({}),
  waitForCompletion: z.boolean().default(false),
  allowedStates: states.min(1).default([RunState.SUCCESS]),
  failedStates: states.default([RunState.FAILED]),
  pokeInterval: durationSchema.default(60_000),
  deferrable: z.boolean().default(false),
}).strict();

/** The XCom key holding the triggered run's id (Airflow's XCOM_RUN_ID). */
export const TRIGGER_RUN_ID_KEY = 'trigger_run_id';

export class TriggerDagRunOperator extends BaseOperator {
  static override templateFields = ['triggerDagId', 'triggerRunId', 'conf'];

  triggerDagId: string;
  triggerRunId: string | undefined;
  conf: Record<string, unknown>;
  readonly waitForCompletion: boolean;
  readonly allowedStates: RunState[];
  readonly failedStates: RunState[];
  /** Milliseconds. */
  readonly pokeInterval: number;
  readonly deferrable: boolean;

  constructor(options: TriggerDagRunOperatorOptions) {
    super(baseOptions(options, OWN_KEYS));
    const own = Object.fromEntries(OWN_KEYS.map((k) => [k, options[k]]).filter(([, v]) => v !== undefined));
    const parsed = ownSchema.safeParse(own);
    if (!parsed.success) throw new DagDefinitionError(this.dagId, `invalid options: ${formatZodIssues(parsed.error)}`, this.taskId);
    const both = parsed.data.allowedStates.filter((s) => parsed.data.failedStates.includes(s));
    if (both.length) throw new DagDefinitionError(this.dagId, `invalid options: states ${both.join(', ')} are both allowed and failed`, this.taskId);
    this.triggerDagId = parsed.data.triggerDagId;
    this.triggerRunId = parsed.data.triggerRunId;
    this.conf = parsed.data.conf;
    this.waitForCompletion = parsed.data.waitForCompletion;
    this.allowedStates = parsed.data.allowedStates;
    this.failedStates = parsed.data.failedStates;
    this.pokeInterval = parsed.data.pokeInterval;
    this.deferrable = parsed.data.deferrable;
  }

  async execute(context: Context): Promise<string | undefined> {
    if (!context.dagRuns) throw new TaskFailedNoRetry(`${this.where()} can only run on a worker's event loop, where other DAGs' runs can be created`);
    let runId: string;
    try {
      ({ runId } = await context.dagRuns.trigger(this.triggerDagId, { runId: this.triggerRunId, conf: this.conf }));
    } catch (err) {
      if (err instanceof UnknownDagError) {
        throw new TaskFailedNoRetry(`${this.where()} cannot trigger DAG "${this.triggerDagId}": ${err.message}`, { cause: err });
      }
      throw err;
    }
    context.ti.xcomPush(TRIGGER_RUN_ID_KEY, runId);
    context.log.info('triggered run "%s" of DAG "%s"', runId, this.triggerDagId);
    if (!this.waitForCompletion) return undefined;
    if (this.deferrable) {
      return this.defer({
        trigger: new DagRunStateTrigger({ dagId: this.triggerDagId, runId, allowedStates: this.allowedStates, failedStates: this.failedStates, pokeIntervalMs: this.pokeInterval }),
        method: 'executeComplete',
      });
    }
    for (;;) {
      const state = await context.dagRuns.state(this.triggerDagId, runId);
      if (state !== null && (this.failedStates as string[]).includes(state)) return this.ended({ outcome: 'failed', state, runId });
      if (state !== null && (this.allowedStates as string[]).includes(state)) return this.ended({ outcome: 'allowed', state, runId });
      context.log.info('run "%s" of DAG "%s" is %s; checking again in %d ms', runId, this.triggerDagId, state ?? 'not there yet', this.pokeInterval);
      if (!(await sleep(this.pokeInterval, context.signal))) throw context.signal.reason ?? new Error('the wait was stopped');
    }
  }

  /** Resumed by the DagRunStateTrigger with the run's state. */
  executeComplete(_context: Context, event: DagRunStateEvent): undefined {
    return this.ended(event);
  }

  private ended(event: DagRunStateEvent): undefined {
    if (event.outcome === 'failed') {
      throw new TaskFailure(`${this.where()}: the triggered run "${event.runId}" of DAG "${this.triggerDagId}" ended in failed state "${event.state}"`);
    }
    return undefined;
  }

  private where(): string {
    return `TriggerDagRunOperator "${this.taskId}" of DAG "${this.dagId}"`;
  }
}
