/**
 * What a user does to a TI by hand: mark it failed or success, or clear it so it runs again.
 * A TI waiting on a trigger is detached first; when nobody else waits on that trigger, the
 * row is deleted and the triggerer is told to kill it (so `onKill` cancels external work).
 * Clearing a task also clears its setups and teardowns (see clear-scope.ts).
 */
import { and, eq, inArray, or, sql } from 'drizzle-orm';
import { Channel, notify, type Database } from '../db/client.ts';
import { dagRuns, dags, iterateItems, taskInstances } from '../db/schema.ts';
import { setupsAndTeardownsToClear } from './clear-scope.ts';
import { wakeNextRunsStatement } from '../db/queries/run-dependencies.ts';
import { deleteUnusedTriggers } from '../db/queries/triggers.ts';
import { UpdraftError } from '../errors.ts';
import { RunState, TaskState } from '../model/states.ts';

export const TiAction = { MARK_FAILED: 'failed', MARK_SUCCESS: 'success', CLEAR: 'clear' } as const;
export type TiAction = (typeof TiAction)[keyof typeof TiAction];

export interface TiSelector {
  dagId: string;
  runId: string;
  taskId: string;
  mapIndex?: number;
}

export async function changeTaskInstance(database: Database, target: TiSelector, action: TiAction): Promise<{ tiIds: number[]; killedTriggers: number[] }> {
  return database.db.transaction(async (tx) => {
    const [run] = await tx.select({ id: dagRuns.id }).from(dagRuns).where(and(eq(dagRuns.dagId, target.dagId), eq(dagRuns.runId, target.runId)));
    if (!run) throw new UpdraftError(`DAG "${target.dagId}" has no run "${target.runId}"; see \`updraft runs list --dag-id ${target.dagId}\``);
    const own = and(eq(taskInstances.taskId, target.taskId), target.mapIndex === undefined ? undefined : eq(taskInstances.mapIndex, target.mapIndex));
    // Clearing a task clears its setups and teardowns too, as Airflow's clear does.
    const [row] = action === TiAction.CLEAR ? await tx.select({ serialized: dags.serialized }).from(dags).where(eq(dags.dagId, target.dagId)) : [];
    const related = row ? setupsAndTeardownsToClear(row.serialized, target.taskId) : [];
    const where = and(eq(taskInstances.runPk, run.id), related.length ? or(own, inArray(taskInstances.taskId, related)) : own);
    const tis = await tx.select({ id: taskInstances.id, triggerId: taskInstances.triggerId }).from(taskInstances).where(where).for('update');
    if (!tis.length) throw new UpdraftError(`run "${target.runId}" of DAG "${target.dagId}" has no task "${target.taskId}"`);
    const patch = action === TiAction.CLEAR
      ? { state: TaskState.NONE, endDate: null, nextRetryAt: null }
      : { state: action, endDate: sql`now()` };
    await tx.update(taskInstances).set({ ...patch, triggerId: null, triggerTimeout: null, nextMethod: null, nextKwargs: null, rescheduleDate: null, workerId: null }).where(where);
    if (action === TiAction.CLEAR) {
      // A cleared iterate TI starts over; its checkpoints belong to the runs being discarded.
      await tx.delete(iterateItems).where(inArray(iterateItems.tiId, tis.map((t) => t.id)));
      await tx.update(dagRuns).set({ state: RunState.RUNNING, endDate: null }).where(and(eq(dagRuns.id, run.id), sql`${dagRuns.state} in ('success', 'failed')`));
    }
    const killed = await deleteUnusedTriggers(tx, [...new Set(tis.map((t) => t.triggerId).filter((x): x is number => x !== null))]);
    if (killed.length) await notify(tx, Channel.TRIGGERER, `kill:${killed.join(',')}`);
    await notify(tx, Channel.SCHEDULER, `runs:${run.id}`);
    // The next run may hold a dependsOnPast TI waiting for this one.
    await tx.execute(wakeNextRunsStatement([run.id]));
    return { tiIds: tis.map((t) => t.id), killedTriggers: killed };
  });
}
