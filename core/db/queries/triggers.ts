/**
 * Trigger rows and the TIs waiting on them. Every transition that resumes or fails a TI is
 * conditional on the TI still waiting on that trigger, so an event is applied at most once
 * even when two triggerers briefly run the same trigger. A fired trigger's row is deleted
 * *before* its TIs are updated: a worker attaching a new TI to the same row holds its lock,
 * and the update statement then sees that TI too, so no TI is left waiting on a deleted row.
 */
import { and, eq, inArray, sql, type SQL } from 'drizzle-orm';
import { taskInstances, triggers } from '../schema.ts';
import { resultRows, type Database, type Executor } from '../client.ts';
import { TaskState, JobType } from '../../model/states.ts';

/** Insert a trigger, or join the identical one already waiting; returns its id. */
export async function upsertTrigger(ex: Executor, name: string, kwargs: string, hash: string): Promise<number> {
  const [row] = resultRows<{ id: string | number }>(await ex.execute(upsertTriggerStatement(ex, name, kwargs, hash)));
  return Number(row.id);
}

/** upsertTrigger as one statement, returning the trigger's id as a row. */
export function upsertTriggerStatement(ex: Executor, name: string, kwargs: string, hash: string): SQL {
  return ex.insert(triggers)
    .values({ name, kwargs, hash, createdDate: new Date() })
    .onConflictDoUpdate({ target: triggers.hash, set: { hash: sql`excluded.hash` } })
    .returning({ id: triggers.id }).getSQL();
}

export interface ClaimedTrigger {
  id: number;
  name: string;
  kwargs: string;
  createdDate: Date;
}

/**
 * Claim unassigned triggers, or those of triggerers whose heartbeat is too old, never the
 * claimer's own: a triggerer whose heartbeat is late would otherwise claim its own rows again
 * and again. Liveness is judged by the database's clock alone.
 */
export async function claimTriggers(database: Database, triggererId: string, limit: number, healthThresholdMs: number): Promise<ClaimedTrigger[]> {
  if (limit <= 0) return [];
  const rows = await database.rows<Record<string, unknown>>(sql`
    with alive as (
      select id from jobs where job_type = ${JobType.TRIGGERER} and state = 'running'
        and latest_heartbeat > now() - make_interval(secs => ${healthThresholdMs / 1000})
    ), c as (
      select t.id from triggers t
      where (t.triggerer_id is null or t.triggerer_id not in (select id from alive))
        and t.triggerer_id is distinct from ${triggererId}
      order by t.id
      limit ${limit}
      for update skip locked
    )
    update triggers t set triggerer_id = ${triggererId}, claimed_at = now()
    from c where t.id = c.id
    returning t.id, t.name, t.kwargs, t.created_date`);
  return rows.map((r) => ({ id: Number(r.id), name: String(r.name), kwargs: String(r.kwargs), createdDate: new Date(r.created_date as string) }));
}

/** Ids of the given triggers that still exist and are still assigned to this triggerer. */
export async function ownedTriggerIds(ex: Executor, triggererId: string): Promise<Set<number>> {
  const rows = await ex.select({ id: triggers.id }).from(triggers).where(eq(triggers.triggererId, triggererId));
  return new Set(rows.map((r) => r.id));
}

export async function countOwned(ex: Executor, triggererId: string): Promise<number> {
  const [row] = await ex.select({ n: sql<number>`count(*)::int` }).from(triggers).where(eq(triggers.triggererId, triggererId));
  return Number(row?.n ?? 0);
}

export async function releaseTriggers(ex: Executor, triggererId: string, ids?: number[]): Promise<void> {
  const mine = eq(triggers.triggererId, triggererId);
  if (ids && !ids.length) return;
  await ex.update(triggers).set({ triggererId: null }).where(ids ? and(mine, inArray(triggers.id, ids)) : mine);
}

export interface WaitingTi {
  id: number;
  triggerId: number;
  triggerTimeout: Date | null;
  /** "dag.task[map] run", for messages. */
  label: string;
}

export async function waitingTis(ex: Executor, triggerIds: number[]): Promise<WaitingTi[]> {
  if (!triggerIds.length) return [];
  const rows = await ex.select({
    id: taskInstances.id, triggerId: taskInstances.triggerId, triggerTimeout: taskInstances.triggerTimeout,
    dagId: taskInstances.dagId, taskId: taskInstances.taskId, mapIndex: taskInstances.mapIndex, runId: taskInstances.runId,
  }).from(taskInstances)
    .where(and(inArray(taskInstances.triggerId, triggerIds), eq(taskInstances.state, TaskState.DEFERRED)));
  return rows.map((r) => ({
    id: r.id, triggerId: r.triggerId!, triggerTimeout: r.triggerTimeout,
    label: `${r.dagId}.${r.taskId}${r.mapIndex >= 0 ? `[${r.mapIndex}]` : ''} ${r.runId}`,
  }));
}

/** Just ids and timeouts: what the triggerer keeps in memory per waiting TI. */
export async function waitingTiTimeouts(ex: Executor, triggerIds: number[]) {
  if (!triggerIds.length) return [];
  const rows = await ex.select({ id: taskInstances.id, triggerId: taskInstances.triggerId, triggerTimeout: taskInstances.triggerTimeout })
    .from(taskInstances)
    .where(and(inArray(taskInstances.triggerId, triggerIds), eq(taskInstances.state, TaskState.DEFERRED)));
  return rows.map((r) => ({ id: r.id, triggerId: r.triggerId!, triggerTimeout: r.triggerTimeout }));
}

/** Delete the given triggers if no TI waits on them any more. */
export async function deleteUnusedTriggers(ex: Executor, ids: number[]): Promise<number[]> {
  if (!ids.length) return [];
  const rows = await ex.delete(triggers).where(and(inArray(triggers.id, ids), sql`not exists (
    select 1 from task_instances ti where ti.trigger_id = ${triggers.id} and ti.state = ${TaskState.DEFERRED})`))
    .returning({ id: triggers.id });
  return rows.map((r) => r.id);
}

/** Triggers with who runs them and what waits on them, for `updraft triggers list`. */
export async function listTriggers(ex: Executor, limit = 1000) {
  return ex.select({
    id: triggers.id, name: triggers.name, triggererId: triggers.triggererId, createdDate: triggers.createdDate,
    waiting: sql<string[]>`coalesce((select array_agg(ti.dag_id || '.' || ti.task_id || ' ' || ti.run_id) from task_instances ti
      where ti.trigger_id = "triggers"."id" and ti.state = ${TaskState.DEFERRED}), '{}')`,
  }).from(triggers).orderBy(triggers.id).limit(limit);
}

/** Delete trigger rows (locking them first); returns the ids that existed. */
export async function deleteTriggers(ex: Executor, ids: number[]): Promise<Set<number>> {
  if (!ids.length) return new Set();
  const rows = await ex.delete(triggers).where(inArray(triggers.id, ids)).returning({ id: triggers.id });
  return new Set(rows.map((r) => r.id));
}

/** Delete triggers nobody waits on any more (bounded, so cleanup never runs unbounded DELETEs). */
export async function deleteOrphanTriggers(ex: Executor, batch = 1000): Promise<number[]> {
  const rows = await ex.execute(sql`
    delete from triggers where id in (
      select t.id from triggers t
      where not exists (select 1 from task_instances ti where ti.trigger_id = t.id and ti.state = ${TaskState.DEFERRED})
        and t.created_date < now() - interval '5 seconds'
      order by t.id limit ${batch}
      for update skip locked
    ) returning id`);
  const list = Array.isArray(rows) ? rows : ((rows as { rows?: unknown[] }).rows ?? []);
  return (list as { id: number | string }[]).map((r) => Number(r.id));
}
