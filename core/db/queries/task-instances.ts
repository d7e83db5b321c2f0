/**
 * Task-instance queries: claiming, finishing, heartbeats, retries and zombies. Claims and
 * finishes are guarded by state (and worker/try) so concurrent processes never apply the
 * same transition twice.
 */
import { and, eq, inArray, lt, lte, sql, type SQL } from 'drizzle-orm';
import { taskInstances, taskInstanceHistory, dagRuns } from '../schema.ts';
import type { Database, Executor } from '../client.ts';
import { RunState, TaskState } from '../../model/states.ts';
import { storableText } from '../../model/json-value.ts';
import { RESCHEDULE_METHOD } from '../../authoring/reschedule.ts';

/** A state as a literal, not a parameter: a generic plan can then use the partial indexes that name it. */
const lit = (state: TaskState): SQL => sql.raw(`'${state}'`);

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
  pool: string;
  /** The TI names a pool that does not exist; the worker fails it with a clear error. */
  poolMissing: boolean;
  /** A mapped TI's input, resolved when it was expanded. */
  mapInput: unknown;
  /** Seconds from becoming scheduled (scheduled_at) to this claim, on the database's clock. */
  schedulingDelayS: number | null;
}

/**
 * Claim up to `limit` scheduled TIs, highest priority first, then FIFO, within pool limits.
 * Pool slots are held by running TIs (and, for pools with include_deferred, by deferred ones
 * and their resumes), so they are leases: a dead worker's TIs become zombies and their slots
 * return when the zombie is reaped. Each DAG's maxActiveTasks caps its running TIs too. The
 * pool rows are locked for the claim, so concurrent workers cannot both take a last slot.
 */
export async function claimScheduled(database: Database, workerId: string, queues: string[], limit: number): Promise<ClaimedTi[]> {
  if (limit <= 0) return [];
  // Begin, lock, claim and commit in one round trip.
  const [, rows] = await database.pipeline(claimStatements(workerId, queues, limit));
  return toClaimed(rows);
}

/** The claim as two statements for one transaction: lock the pools, then claim (see claimScheduled). */
export function claimStatements(workerId: string, queues: string[], limit: number): [SQL, SQL] {
  return [sql`select name from pools order by name for update`, sql`
      with usage as (
        select pool, sum(pool_slots)::int as used from (
          select pool, pool_slots from task_instances where state = ${lit(TaskState.RUNNING)}
          union all
          -- The predicate is ti_pool_held_deferred's, so this reads that small index, never the table.
          select ti.pool, ti.pool_slots from task_instances ti
          where (ti.state = 'deferred' or (ti.state = 'scheduled' and ti.next_method is not null))
            and ti.pool in (select name from pools where include_deferred)
        ) held group by pool
      ), dag_running as (
        select dag_id, count(*)::int as running from task_instances where state = ${lit(TaskState.RUNNING)} group by dag_id
      ), candidates as (
        select id, dag_id, pool, pool_slots, priority_weight, scheduled_at, next_method from task_instances
        where state = ${lit(TaskState.SCHEDULED)} and queue in ${queues}
        order by priority_weight desc nulls last, scheduled_at, id
        limit ${Math.max(64, limit * 4)}
      ), ranked as (
        select c.id, c.priority_weight, c.scheduled_at, p.name is null as pool_missing,
          coalesce(p.slots, -1) as slots, coalesce(u.used, 0) as used,
          sum(case when p.include_deferred and c.next_method is not null then 0 else c.pool_slots end)
            over (partition by c.pool order by c.priority_weight desc, c.scheduled_at, c.id) as cum,
          -- maxActiveTasks: running TIs of the DAG plus those claimed ahead of this one.
          coalesce(d.max_active_tasks, 16) as dag_limit, coalesce(dr.running, 0) as dag_running,
          row_number() over (partition by c.dag_id order by c.priority_weight desc, c.scheduled_at, c.id) as dag_cum
        from candidates c left join pools p on p.name = c.pool left join usage u on u.pool = c.pool
          left join dags d on d.dag_id = c.dag_id left join dag_running dr on dr.dag_id = c.dag_id
      ), key_running as (
        select k.key, count(*)::int as n from ti_limit_keys k join task_instances t on t.id = k.ti_id
        where t.state = ${lit(TaskState.RUNNING)} group by k.key
      ), key_blocked as (
        -- Per limit key (maxActiveTisPerDag, per run, tag limits): running plus those ahead.
        select distinct ck.id from (
          select c.id, k.key, k."limit", row_number() over (partition by k.key order by c.priority_weight desc, c.scheduled_at, c.id) as rn
          from candidates c join ti_limit_keys k on k.ti_id = c.id
        ) ck left join key_running kr on kr.key = ck.key
        where coalesce(kr.n, 0) + ck.rn > ck."limit"
      ), chosen as (
        select id, pool_missing from ranked where (slots < 0 or used + cum <= slots) and dag_running + dag_cum <= dag_limit
          and id not in (select id from key_blocked)
        order by priority_weight desc, scheduled_at, id limit ${limit}
      ), locked as (
        -- Only the chosen rows are locked, each looked up by its key; one another process holds
        -- is skipped, not waited on, and one claimed since this statement began fails the state
        -- check, which is re-read on the locked row.
        select l.id, c.pool_missing from chosen c cross join lateral (
          select t.id from task_instances t where t.id = c.id and t.state = ${lit(TaskState.SCHEDULED)}
          for update skip locked
        ) l
      )
      update task_instances t
      set state = ${lit(TaskState.RUNNING)}, worker_id = ${workerId}, heartbeat_at = now(), end_date = null, duration = null, error = null,
          -- A resume continues the same try: executionTimeout counts from the try's first start.
          try_number = case when t.next_method is null then t.try_number + 1 else t.try_number end,
          start_date = case when t.next_method is null then clock_timestamp() else coalesce(t.start_date, clock_timestamp()) end
      from locked chosen where t.id = chosen.id
      returning t.id, t.run_pk, t.dag_id, t.run_id, t.task_id, t.map_index, t.try_number, t.max_tries, t.start_date,
        t.next_method, t.next_kwargs, t.pool, t.map_input, chosen.pool_missing,
        extract(epoch from clock_timestamp() - t.scheduled_at)::float8 as scheduling_delay_s`];
}

/** Rows returned by the claim statement, typed. */
export function toClaimed(rows: Record<string, unknown>[]): ClaimedTi[] {
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
    pool: String(r.pool),
    poolMissing: r.pool_missing === true,
    mapInput: r.map_input ?? null,
    schedulingDelayS: r.scheduling_delay_s == null ? null : Number(r.scheduling_delay_s),
  }));
}

export interface TiFinish {
  id: number;
  tryNumber: number;
  state: TaskState;
  endDate: Date | null;
  duration: number | null;
  error: string | null;
  nextRetryAt: Date | null;
  /** Set when the TI defers. */
  triggerId?: number | null;
  nextMethod?: string | null;
  nextKwargs?: unknown;
  triggerTimeout?: Date | null;
  /** Set when a sensor in reschedule mode is parked until this time. */
  rescheduleDate?: Date | null;
}

/** Apply finishes for TIs this worker still owns (recording ended tries); returns the ids that applied. */
export async function finishTis(ex: Executor, database: Database, workerId: string, items: TiFinish[]): Promise<Set<number>> {
  if (!items.length) return new Set();
  const rows = await database.preparedRows<{ id: string | number }>(finishTisStatement(workerId, items), ex);
  return new Set(rows.map((r) => Number(r.id)));
}

/**
 * finishTis as one statement. With `requireAll`, it fails (SQLSTATE UD001, rolling back its
 * transaction) unless every item applied, so statements sent after it may assume they did.
 */
export function finishTisStatement(workerId: string, items: TiFinish[], requireAll = false): SQL {
  const iso = (d: Date | null | undefined) => d?.toISOString() ?? null;
  // One JSON parameter whatever the batch size: one statement text, planned once.
  const values = JSON.stringify(items.map((i) => ({
    id: i.id, try_number: i.tryNumber, state: i.state, end_date: iso(i.endDate), duration: i.duration, error: i.error === null ? null : storableText(i.error),
    next_retry_at: iso(i.nextRetryAt), trigger_id: i.triggerId ?? null, next_method: i.nextMethod ?? null,
    next_kwargs: i.nextKwargs ?? null, trigger_timeout: iso(i.triggerTimeout), reschedule_date: iso(i.rescheduleDate),
  })));
  // One statement: apply the finishes and copy every try that ended into the history table.
  return sql`
    with finished as (
      update task_instances t
      set state = v.state, end_date = v.end_date, duration = v.duration, error = v.error, next_retry_at = v.next_retry_at,
          trigger_id = v.trigger_id, next_method = v.next_method, next_kwargs = v.next_kwargs, trigger_timeout = v.trigger_timeout,
          reschedule_date = v.reschedule_date,
          worker_id = case when v.state in (${lit(TaskState.DEFERRED)}, ${lit(TaskState.UP_FOR_RESCHEDULE)}) then null else t.worker_id end
      from jsonb_to_recordset(${values}::jsonb) as v(id bigint, try_number int, state text, end_date timestamptz, duration float8,
        error text, next_retry_at timestamptz, trigger_id bigint, next_method text, next_kwargs jsonb, trigger_timeout timestamptz,
        reschedule_date timestamptz)
      where t.id = v.id and t.state = ${lit(TaskState.RUNNING)} and t.worker_id = ${workerId} and t.try_number = v.try_number
      returning t.*
    ), history as (
      insert into task_instance_history (ti_id, dag_id, run_id, task_id, map_index, try_number, state, worker_id, start_date, end_date, duration, error)
      select id, dag_id, run_id, task_id, map_index, try_number, state, worker_id, start_date, end_date, duration, error
      -- A deferral or a reschedule pauses the try; it has not ended.
      from finished where state not in (${lit(TaskState.DEFERRED)}, ${lit(TaskState.UP_FOR_RESCHEDULE)})
    )
    ${requireAll
    // The check is the outer side, so it runs even when nothing applied.
    ? sql`, checked as (select updraft_require((select count(*) from finished) = ${items.length}, 'a finished TI is no longer held by this worker') as ok)
      select f.id from checked left join finished f on true`
    : sql`select id from finished`}`;
}

/** How a TI's latest try before `tryNumber` ended, from the history table (null: none recorded). */
export async function previousTry(ex: Executor, tiId: number, tryNumber: number): Promise<{ tryNumber: number; state: string; error: string | null } | null> {
  const [row] = await ex.select({ tryNumber: taskInstanceHistory.tryNumber, state: taskInstanceHistory.state, error: taskInstanceHistory.error })
    .from(taskInstanceHistory)
    .where(and(eq(taskInstanceHistory.tiId, tiId), lt(taskInstanceHistory.tryNumber, tryNumber)))
    .orderBy(sql`${taskInstanceHistory.tryNumber} desc, ${taskInstanceHistory.id} desc`)
    .limit(1);
  return row ?? null;
}

/** Copy the current try of each TI into the history table. */
export async function recordHistory(ex: Executor, tiIds: number[]): Promise<void> {
  if (!tiIds.length) return;
  await ex.execute(sql`
    insert into ${taskInstanceHistory} (ti_id, dag_id, run_id, task_id, map_index, try_number, state, worker_id, start_date, end_date, duration, error)
    select id, dag_id, run_id, task_id, map_index, try_number, state, worker_id, start_date, end_date, duration, error
    from ${taskInstances} where id in ${tiIds}`);
}

/**
 * Heartbeat the TIs this worker is running now. Only these: a TI whose result the worker gave
 * up on must go stale and be reaped as a zombie, not be kept alive by its worker id.
 *
 * Rows another transaction holds are skipped, not waited for: that is almost always this
 * worker's own batch finishing them, which updates the same rows in its own order. Waiting
 * would deadlock the two, and PostgreSQL would only notice after `deadlock_timeout` (1 s), a
 * second in which the worker's writes stand still. A row skipped now misses one heartbeat of
 * many before the zombie threshold.
 */
export async function heartbeatTis(ex: Executor, workerId: string, ids: number[]): Promise<void> {
  if (!ids.length) return;
  await ex.execute(sql`
    update ${taskInstances} set heartbeat_at = now()
    where id in (
      select id from ${taskInstances}
      where worker_id = ${workerId} and state = ${TaskState.RUNNING} and id in ${ids}
      for update skip locked
    )`);
}

/**
 * A stopping worker gives back TIs it could not finish in its grace period: scheduled again,
 * with the try not counted (a fresh try's number is taken back; a resume keeps its try), so
 * another worker runs them at once and no retry is spent. Returns the ids given back.
 */
export async function handBackTis(ex: Executor, workerId: string, ids: number[]): Promise<number[]> {
  if (!ids.length) return [];
  const rows = await ex.update(taskInstances).set({
    state: TaskState.SCHEDULED, workerId: null, heartbeatAt: null, scheduledAt: sql`now()`,
    tryNumber: sql`case when ${taskInstances.nextMethod} is null then ${taskInstances.tryNumber} - 1 else ${taskInstances.tryNumber} end`,
  }).where(and(inArray(taskInstances.id, ids), eq(taskInstances.workerId, workerId), eq(taskInstances.state, TaskState.RUNNING)))
    .returning({ id: taskInstances.id });
  return rows.map((r) => r.id);
}

/** Retries and sensor reschedules whose time has come go back to scheduled. Returns how many. */
export async function releaseDueRetries(ex: Executor): Promise<number> {
  // A sensor reaped between reschedules retries from a fresh try, not as the next poke of the old one.
  const fresh = sql`${taskInstances.nextMethod} = ${RESCHEDULE_METHOD}`;
  const rows = await ex.update(taskInstances)
    .set({
      state: TaskState.SCHEDULED, scheduledAt: sql`now()`, nextRetryAt: null,
      nextMethod: sql`case when ${fresh} then null else ${taskInstances.nextMethod} end`,
      nextKwargs: sql`case when ${fresh} then null else ${taskInstances.nextKwargs} end`,
    })
    .where(and(eq(taskInstances.state, TaskState.UP_FOR_RETRY), lte(taskInstances.nextRetryAt, sql`now()`)))
    .returning({ id: taskInstances.id });
  const pokes = await ex.update(taskInstances)
    .set({ state: TaskState.SCHEDULED, scheduledAt: sql`now()`, rescheduleDate: null })
    .where(and(eq(taskInstances.state, TaskState.UP_FOR_RESCHEDULE), lte(taskInstances.rescheduleDate, sql`now()`)))
    .returning({ id: taskInstances.id });
  return rows.length + pokes.length;
}

/** The earliest time a retry or a reschedule is due (each read through its own partial index). */
export async function nextRetryDue(ex: Executor): Promise<Date | null> {
  const [row] = await ex.select({
    at: sql<Date | string | null>`least(
      (select min(next_retry_at) from task_instances where state = ${lit(TaskState.UP_FOR_RETRY)}),
      (select min(reschedule_date) from task_instances where state = ${lit(TaskState.UP_FOR_RESCHEDULE)}))`,
  }).from(sql`(select 1) as one`);
  return row?.at ? new Date(row.at) : null;
}

/** TI states that are not finished: the ones a run still waits on. */
export const OPEN_TI_STATES: readonly TaskState[] = [
  TaskState.NONE, TaskState.SCHEDULED, TaskState.RUNNING, TaskState.DEFERRED, TaskState.UP_FOR_RETRY, TaskState.UP_FOR_RESCHEDULE,
];

/**
 * Unfinished TIs by state, counted within running runs: the read walks the running runs
 * (dag_runs_state) and each one's (run, state) index entries, so its cost follows the open
 * work, never the millions of finished TIs a busy table holds. Every open state is present.
 */
export async function countOpenTisByState(ex: Executor): Promise<Record<string, number>> {
  const rows = await ex.select({ state: taskInstances.state, n: sql<number>`count(*)::int` })
    .from(dagRuns).innerJoin(taskInstances, eq(taskInstances.runPk, dagRuns.id))
    .where(and(eq(dagRuns.state, RunState.RUNNING), inArray(taskInstances.state, [...OPEN_TI_STATES])))
    .groupBy(taskInstances.state);
  const counts: Record<string, number> = Object.fromEntries(OPEN_TI_STATES.map((s) => [s, 0]));
  for (const r of rows) counts[r.state] = Number(r.n);
  return counts;
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
