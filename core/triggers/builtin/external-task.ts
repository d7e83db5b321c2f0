/**
 * ExternalTaskTrigger: waits for a task of another DAG run (or the whole run, when `taskId` is
 * null) to reach an allowed or a failed state, by polling Updraft's own metadata database. The
 * run is identified by DAG id and logical date, as in Airflow's ExternalTaskSensor. A missing
 * run or task instance is not an error: it may simply not have been created yet.
 */
import { and, asc, eq } from 'drizzle-orm';
import { z } from 'zod';
import { BaseTrigger } from '../base-trigger.ts';
import { TriggerEvent } from '../events.ts';
import { registerTrigger } from '../registry.ts';
import { dagRuns, taskInstances } from '../../db/schema.ts';
import { RunState, TaskState } from '../../model/states.ts';
import { MIN_POKE_INTERVAL_MS, isoInstantSchema, toIsoInstant } from './date-time.ts';
import { disjointStates, pollUntilDecided } from './poll.ts';

export const EXTERNAL_POKE_INTERVAL_MS = 5_000;
export const DEFAULT_ALLOWED_STATES: readonly string[] = [TaskState.SUCCESS];
export const DEFAULT_FAILED_STATES: readonly string[] = [TaskState.FAILED, TaskState.UPSTREAM_FAILED];

const KNOWN_STATES = [...new Set<string>([...Object.values(TaskState), ...Object.values(RunState)])];
const stateList = z.array(z.enum(KNOWN_STATES as [string, ...string[]]));

export type ExternalTaskTriggerKwargs = {
  dagId: string;
  /** null: wait on the DAG run's own state. */
  taskId: string | null;
  logicalDate: string;
  allowedStates: string[];
  failedStates: string[];
  pokeIntervalMs: number;
};

export type ExternalTaskTriggerInput = Pick<ExternalTaskTriggerKwargs, 'dagId' | 'logicalDate'>
  & Partial<Omit<ExternalTaskTriggerKwargs, 'dagId' | 'logicalDate'>>;

export interface ExternalTaskEvent {
  state: 'allowed' | 'failed';
  /** The state seen; for a mapped task, its distinct states joined by ",". */
  observed: string;
}

const externalKwargsSchema = z.object({
  dagId: z.string().min(1),
  taskId: z.string().min(1).nullable().default(null),
  logicalDate: isoInstantSchema,
  allowedStates: stateList.min(1).default([...DEFAULT_ALLOWED_STATES]),
  failedStates: stateList.default([...DEFAULT_FAILED_STATES]),
  pokeIntervalMs: z.number().int().min(MIN_POKE_INTERVAL_MS).default(EXTERNAL_POKE_INTERVAL_MS),
}).strict().superRefine(disjointStates);

/** Yields `{ state: 'allowed' | 'failed', observed }` once the watched state is decided. */
export class ExternalTaskTrigger extends BaseTrigger<ExternalTaskTriggerKwargs> {
  static readonly triggerName = 'updraft.ExternalTaskTrigger';
  static readonly kwargsSchema: z.ZodType<ExternalTaskTriggerKwargs> = externalKwargsSchema;

  constructor(kwargs: ExternalTaskTriggerInput) {
    super({
      dagId: kwargs.dagId,
      taskId: kwargs.taskId ?? null,
      logicalDate: toIsoInstant(kwargs.logicalDate),
      allowedStates: [...(kwargs.allowedStates ?? DEFAULT_ALLOWED_STATES)],
      failedStates: [...(kwargs.failedStates ?? DEFAULT_FAILED_STATES)],
      pokeIntervalMs: kwargs.pokeIntervalMs ?? EXTERNAL_POKE_INTERVAL_MS,
    });
  }

  async *run(): AsyncGenerator<TriggerEvent, void, void> {
    const event = await pollUntilDecided(this.runtime.signal, this.kwargs.pokeIntervalMs, () => this.observe(), (states) => this.decide(states));
    if (event) yield new TriggerEvent(event);
  }

  /** Current states of the watched TIs (by map index) or of the run; empty if not there yet. */
  async observe(): Promise<string[]> {
    const { db } = this.runtime.database;
    const { dagId, taskId } = this.kwargs;
    const logicalDate = new Date(this.kwargs.logicalDate);
    const runMatch = and(eq(dagRuns.dagId, dagId), eq(dagRuns.logicalDate, logicalDate));
    if (taskId === null) {
      const rows = await db.select({ state: dagRuns.state }).from(dagRuns).where(runMatch);
      return rows.map((r) => r.state);
    }
    const rows = await db.select({ state: taskInstances.state })
      .from(taskInstances)
      .innerJoin(dagRuns, eq(taskInstances.runPk, dagRuns.id))
      .where(and(runMatch, eq(taskInstances.taskId, taskId)))
      .orderBy(asc(taskInstances.mapIndex));
    return rows.map((r) => r.state);
  }

  /** Any failed state decides at once; allowed needs every map index allowed. */
  decide(states: string[]): ExternalTaskEvent | null {
    if (!states.length) return null;
    const failed = states.find((s) => this.kwargs.failedStates.includes(s));
    if (failed) return { state: 'failed', observed: failed };
    if (states.every((s) => this.kwargs.allowedStates.includes(s))) {
      return { state: 'allowed', observed: [...new Set(states)].sort().join(',') };
    }
    return null;
  }
}

registerTrigger(ExternalTaskTrigger);
