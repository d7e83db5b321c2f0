/**
 * What a user does to a TI by hand: mark it failed or success, or clear it so it runs again.
 * A TI waiting on a trigger is detached first; when nobody else waits on that trigger, the
 * row is deleted and the triggerer is told to kill it (so `onKill` cancels external work).
 * Clearing a task also clears its setups and teardowns (see clear-scope.ts).
 */
import { and, eq, inArray, notInArray, or, sql, type SQL } from 'drizzle-orm';
import { Channel, notify, type Database, type Tx } from '../db/client.ts';
import { dagRuns, dags, iterateItems, taskInstances } from '../db/schema.ts';
import { downstreamTasks, setupsAndTeardownsToClear } from './clear-scope.ts';
import { wakeNextRunsStatement } from '../db/queries/run-dependencies.ts';
import { deleteUnusedTriggers } from '../db/queries/triggers.ts';
import { UpdraftError } from '../errors.ts';
import { FINISHED_TASK_STATES, RunState, TaskState } from '../model/states.ts';

export const TiAction = { MARK_FAILED: 'failed', MARK_SUCCESS: 'success', CLEAR: 'clear' } as const;
export type TiAction = (typeof TiAction)[keyof typeof TiAction];

export interface TiSelector {
  dagId: string;
  runId: string;
  taskId: string;
  mapIndex?: number;
  /** Also every task downstream of it (all their TIs, whatever the map index). */
  downstream?: boolean;
}

export async function changeTaskInstance(database: Database, target: TiSelector, action: TiAction): Promise<{ tiIds: number[]; killedTriggers: number[] }> {
  return database.db.transaction(async (tx) => {
    const run = await lockRun(tx, target.dagId, target.runId);
    const own = and(eq(taskInstances.taskId, target.taskId), target.mapIndex === undefined ? undefined : eq(taskInstances.mapIndex, target.mapIndex));
    // Clearing a task clears its setups and teardowns too, as Airflow's clear does.
    const [row] = action === TiAction.CLEAR || target.downstream ? await tx.select({ serialized: dags.serialized }).from(dags).where(eq(dags.dagId, target.dagId)) : [];
    const downstream = row && target.downstream ? downstreamTasks(row.serialized, target.taskId) : [];
    const related = [...new Set([...(row && action === TiAction.CLEAR ? [target.taskId, ...downstream].flatMap((t) => setupsAndTeardownsToClear(row.serialized, t)) : []), ...downstream])]
      .filter((t) => t !== target.taskId);
    const where = and(eq(taskInstances.runPk, run.id), related.length ? or(own, inArray(taskInstances.taskId, related)) : own)!;
    const changed = await applyAction(tx, run.id, where, action);
    if (!changed.tiIds.length) throw new UpdraftError(`run "${target.runId}" of DAG "${target.dagId}" has no task "${target.taskId}"`);
    return changed;
  });
}

/**
 * A whole run: clear every TI (or only the failed and upstream-failed ones), or mark the run
 * success or failed, which marks its unfinished TIs the same (Airflow's "mark run as").
 */
export async function changeDagRun(database: Database, target: { dagId: string; runId: string; onlyFailed?: boolean }, action: TiAction): Promise<{ tiIds: number[]; killedTriggers: number[] }> {
  return database.db.transaction(async (tx) => {
    const run = await lockRun(tx, target.dagId, target.runId);
    const where = and(eq(taskInstances.runPk, run.id), action === TiAction.CLEAR
      ? (target.onlyFailed ? inArray(taskInstances.state, [TaskState.FAILED, TaskState.UPSTREAM_FAILED]) : undefined)
      : notInArray(taskInstances.state, FINISHED_TASK_STATES as TaskState[]))!;
    const changed = await applyAction(tx, run.id, where, action);
    if (action !== TiAction.CLEAR) await tx.update(dagRuns).set({ state: action, endDate: sql`now()` }).where(eq(dagRuns.id, run.id));
    return changed;
  });
}

async function lockRun(tx: Tx, dagId: string, runId: string): Promise<{ id: number }> {
  // Locked first, as the scheduler and workers lock a run before deciding it is done: a run
  // closing while its TIs are reset here would leave them waiting in a finished run.
  const [run] = await tx.select({ id: dagRuns.id }).from(dagRuns).where(and(eq(dagRuns.dagId, dagId), eq(dagRuns.runId, runId))).for('update');
  if (!run) throw new UpdraftError(`DAG "${dagId}" has no run "${runId}"; see \`updraft runs list --dag-id ${dagId}\``);
  return run;
}

async function applyAction(tx: Tx, runPk: number, where: SQL, action: TiAction): Promise<{ tiIds: number[]; killedTriggers: number[] }> {
  const tis = await tx.select({ id: taskInstances.id, triggerId: taskInstances.triggerId }).from(taskInstances).where(where).for('update');
  if (!tis.length) return { tiIds: [], killedTriggers: [] };
  const patch = action === TiAction.CLEAR
    ? { state: TaskState.NONE, endDate: null, nextRetryAt: null }
    : { state: action, endDate: sql`now()` };
  await tx.update(taskInstances).set({ ...patch, triggerId: null, triggerTimeout: null, nextMethod: null, nextKwargs: null, rescheduleDate: null, workerId: null }).where(where);
  if (action === TiAction.CLEAR) {
    // A cleared iterate TI starts over; its checkpoints belong to the runs being discarded.
    await tx.delete(iterateItems).where(inArray(iterateItems.tiId, tis.map((t) => t.id)));
    await tx.update(dagRuns).set({ state: RunState.RUNNING, endDate: null }).where(and(eq(dagRuns.id, runPk), sql`${dagRuns.state} in ('success', 'failed')`));
  }
  const killed = await deleteUnusedTriggers(tx, [...new Set(tis.map((t) => t.triggerId).filter((x): x is number => x !== null))]);
  if (killed.length) await notify(tx, Channel.TRIGGERER, `kill:${killed.join(',')}`);
  await notify(tx, Channel.SCHEDULER, `runs:${runPk}`);
  // The next run may hold a dependsOnPast TI waiting for this one.
  await tx.execute(wakeNextRunsStatement([runPk]));
  return { tiIds: tis.map((t) => t.id), killedTriggers: killed };
}
