/**
 * DagRunStateTrigger (Airflow's DagStateTrigger): waits for a DAG run, by DAG id and run id, to
 * reach one of `allowedStates` or `failedStates`, polling Updraft's metadata database. A run
 * not there yet is not an error (it may be about to be created). The deferrable wait of
 * TriggerDagRunOperator.
 */
import { and, eq } from 'drizzle-orm';
import { z } from 'zod';
import { BaseTrigger } from '../base-trigger.ts';
import { TriggerEvent } from '../events.ts';
import { registerTrigger } from '../registry.ts';
import { dagRuns } from '../../db/schema.ts';
import { RunState } from '../../model/states.ts';
import { MIN_POKE_INTERVAL_MS } from './date-time.ts';
import { disjointStates, pollUntilDecided } from './poll.ts';

export const DAG_RUN_POKE_INTERVAL_MS = 5_000;

const runStates = z.array(z.enum(Object.values(RunState) as [RunState, ...RunState[]]));

export type DagRunStateTriggerKwargs = {
  dagId: string;
  runId: string;
  allowedStates: RunState[];
  failedStates: RunState[];
  pokeIntervalMs: number;
};

export interface DagRunStateEvent {
  outcome: 'allowed' | 'failed';
  /** The run's state when decided. */
  state: string;
  runId: string;
}

const kwargsSchema = z.object({
  dagId: z.string().min(1),
  runId: z.string().min(1),
  allowedStates: runStates.min(1),
  failedStates: runStates,
  pokeIntervalMs: z.number().int().min(MIN_POKE_INTERVAL_MS),
}).strict().superRefine(disjointStates);

export class DagRunStateTrigger extends BaseTrigger<DagRunStateTriggerKwargs> {
  static readonly triggerName = 'updraft.DagRunStateTrigger';
  static readonly kwargsSchema: z.ZodType<DagRunStateTriggerKwargs> = kwargsSchema;

  async *run(): AsyncGenerator<TriggerEvent, void, void> {
    const event = await pollUntilDecided(this.runtime.signal, this.kwargs.pokeIntervalMs, () => this.observe(), (states) => this.decide(states));
    if (event) yield new TriggerEvent(event);
  }

  async observe(): Promise<string[]> {
    const rows = await this.runtime.database.db.select({ state: dagRuns.state }).from(dagRuns)
      .where(and(eq(dagRuns.dagId, this.kwargs.dagId), eq(dagRuns.runId, this.kwargs.runId)));
    return rows.map((r) => r.state);
  }

  decide(states: string[]): DagRunStateEvent | null {
    const [state] = states;
    if (state === undefined) return null;
    const { allowedStates, failedStates, runId } = this.kwargs;
    if ((failedStates as string[]).includes(state)) return { outcome: 'failed', state, runId };
    if ((allowedStates as string[]).includes(state)) return { outcome: 'allowed', state, runId };
    return null;
  }
}

registerTrigger(DagRunStateTrigger);
