/**
 * Task-instance queries: claiming, finishing, heartbeats, retries and zombies. Claims and
 * finishes are guarded by state (and worker/try) so concurrent processes never apply the
 * same transition twice.
 */
import { and, eq, inArray, lt, lte, sql } from 'drizzle-orm';
import { taskInstances, taskInstanceHistory, dagRuns } from '../schema.ts';
import type { Database, Executor } from '../client.ts';
import { TaskState } from '../../runtime/states.ts';

export interface ClaimedTi {
  id: number;
  runPk: number;
  dagId: string;
  runId: string;
  taskId: string;
  mapIndex: number;
  tryNumber: number;
  maxTries: number;
  startDate: Date;
  nextMethod: string | null;
  nextKwargs: unknown;
}

/** Claim up to `limit` scheduled TIs, highest priority first, then FIFO. */
export async function claimScheduled(database: Database, workerId: string, queues: string[], limit: number): Promise<ClaimedTi[]> {
  const rows = await database.rows<Record<string, unknown>>(sql`
    with c as (
      select id from task_instances
      where state = ${TaskState.SCHEDULED} and queue in ${queues}
      order by priority_weight desc, scheduled_at, id
      limit ${limit}
      for update skip locked
    )
    update task_instances t
    set state = ${TaskState.RUNNING}, try_number = t.try_number + 1, worker_id = ${workerId},
        heartbeat_at = now(), start_date = now(), end_date = null, duration = null, error = null
    from c where t.id = c.id
    returning t.id, t.run_pk, t.dag_id, t.run_id, t.task_id, t.map_index, t.try_number, t.max_tries, t.start_date, t.next_method, t.next_kwargs`);
  return rows.map((r) => ({
    id: Number(r.id),
    runPk: Number(r.run_pk),
    dagId: String(r.dag_id),
    runId: String(r.run_id),
    taskId: String(r.task_id),
    mapIndex: Number(r.map_index),
    tryNumber: Number(r.try_number),
    maxTries: Number(r.max_tries),
    startDate: new Date(r.start_date as string),
    nextMethod: (r.next_method as string | null) ?? null,
    nextKwargs: r.next_kwargs ?? null,
  }));
}

export interface TiFinish {
  id: number;
  tryNumber: number;
  state: TaskState;
  endDate: Date;
  duration: number;
  error: string | null;
  nextRetryAt: Date | null;
}

/** Apply finishes for TIs this worker still owns; returns the ids that applied. */
export async function finishTis(ex: Executor, database: Database, workerId: string, items: TiFinish[]): Promise<Set<number>> {
  if (!items.length) return new Set();
  const values = sql.join(items.map((i) => sql`(${i.id}::bigint, ${i.tryNumber}::int, ${i.state}::text, ${i.endDate.toISOString()}::timestamptz, ${i.duration}::float8, ${i.error}::text, ${i.nextRetryAt?.toISOString() ?? null}::timestamptz)`), sql`, `);
  const rows = await database.rows<{ id: string | number }>(sql`
    update task_instances t
    set state = v.state, end_date = v.end_date, duration = v.duration, error = v.error, next_retry_at = v.next_retry_at,
        next_method = null, next_kwargs = null
    from (values ${values}) as v(id, try_number, state, end_date, duration, error, next_retry_at)
    where t.id = v.id and t.state = ${TaskState.RUNNING} and t.worker_id = ${workerId} and t.try_number = v.try_number
    returning t.id`, ex);
  return new Set(rows.map((r) => Number(r.id)));
}

/** Copy the current try of each TI into the history table. */
export async function recordHistory(ex: Executor, tiIds: number[]): Promise<void> {
  if (!tiIds.length) return;
  await ex.execute(sql`
    insert into ${taskInstanceHistory} (ti_id, dag_id, run_id, task_id, map_index, try_number, state, worker_id, start_date, end_date, duration, error)
    select id, dag_id, run_id, task_id, map_index, try_number, state, worker_id, start_date, end_date, duration, error
    from ${taskInstances} where id in ${tiIds}`);
}

export async function heartbeatTis(ex: Executor, workerId: string): Promise<void> {
  await ex.update(taskInstances).set({ heartbeatAt: sql`now()` })
    .where(and(eq(taskInstances.workerId, workerId), eq(taskInstances.state, TaskState.RUNNING)));
}

/** Retries whose time has come go back to scheduled. Returns how many, and the next due time. */
export async function releaseDueRetries(ex: Executor): Promise<number> {
  const rows = await ex.update(taskInstances)
    .set({ state: TaskState.SCHEDULED, scheduledAt: sql`now()`, nextRetryAt: null })
    .where(and(eq(taskInstances.state, TaskState.UP_FOR_RETRY), lte(taskInstances.nextRetryAt, sql`now()`)))
    .returning({ id: taskInstances.id });
  return rows.length;
}

export async function nextRetryDue(ex: Executor): Promise<Date | null> {
  const [row] = await ex.select({ at: sql<Date | string | null>`min(${taskInstances.nextRetryAt})` })
    .from(taskInstances).where(eq(taskInstances.state, TaskState.UP_FOR_RETRY));
  return row?.at ? new Date(row.at) : null;
}

export interface ZombieTi {
  id: number;
  runPk: number;
  dagId: string;
  taskId: string;
  tryNumber: number;
  workerId: string | null;
}

/** Running TIs whose heartbeat is older than the threshold, locked for this transaction. */
export async function lockZombies(ex: Executor, thresholdMs: number): Promise<ZombieTi[]> {
  return ex.select({
    id: taskInstances.id, runPk: taskInstances.runPk, dagId: taskInstances.dagId, taskId: taskInstances.taskId,
    tryNumber: taskInstances.tryNumber, workerId: taskInstances.workerId,
  }).from(taskInstances)
    .where(and(eq(taskInstances.state, TaskState.RUNNING), lt(taskInstances.heartbeatAt, sql`now() - make_interval(secs => ${thresholdMs / 1000})`)))
    .limit(500)
    .for('update', { skipLocked: true });
}

export async function runContext(ex: Executor, runPks: number[]) {
  if (!runPks.length) return [];
  return ex.select({
    id: dagRuns.id, logicalDate: dagRuns.logicalDate, dataIntervalStart: dagRuns.dataIntervalStart,
    dataIntervalEnd: dagRuns.dataIntervalEnd, conf: dagRuns.conf,
  }).from(dagRuns).where(inArray(dagRuns.id, runPks));
}
