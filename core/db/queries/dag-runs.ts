/**
 * DAG-run queries: creating runs (idempotent on dag id + logical date, so two schedulers can
 * never duplicate one), starting queued runs with their TIs, and closing finished runs.
 */
import { and, asc, desc, eq, inArray, sql, type SQL } from 'drizzle-orm';
import { dagRuns, dags, taskInstances } from '../schema.ts';
import { resultRows, Channel, type Executor } from '../client.ts';
import { CALLBACKS_PAYLOAD } from './callbacks.ts';
import type { Dag } from '../../authoring/dag.ts';
import { attachLimitKeys } from './limits.ts';
import { withinTagLimits, type TagLimit } from '../../authoring/limits.ts';
import { FINISHED_TASK_STATES, RunState, RunType, TaskState } from '../../model/states.ts';

export interface NewRun {
  dagId: string;
  runId: string;
  runType: RunType;
  priority?: number;
  tags?: Record<string, string>;
  logicalDate: Date;
  dataIntervalStart: Date | null;
  dataIntervalEnd: Date | null;
  conf: Record<string, unknown>;
}

/** Insert a queued run; returns its pk, or null if that run (or logical date) already exists. */
export async function createRun(ex: Executor, run: NewRun): Promise<number | null> {
  const rows = await ex.insert(dagRuns)
    .values({ ...run, state: RunState.QUEUED, queuedAt: new Date() })
    .onConflictDoNothing()
    .returning({ id: dagRuns.id });
  return rows[0]?.id ?? null;
}

export interface StartedRun {
  runPk: number;
  dagId: string;
  scheduled: number;
}

export interface RunQueueLimits {
  /** Deployment-wide cap on running runs; -1 for none, 0 to start nothing. */
  maxConcurrentRuns: number;
  /** Tag limits over run tags (backfill throttling, per-team caps). */
  runTagLimits: readonly TagLimit[];
}

/**
 * The run queue: start queued runs by priority, then oldest logical date first (for manual runs
 * that is FIFO: their logical date is when they were queued), while the deployment-wide limit,
 * each DAG's maxActiveRuns and the run tag limits allow. A run that is blocked is skipped and
 * the runs behind it may still start. A paused DAG's runs wait, except backfill runs (asked for
 * by hand, as in Airflow). One scheduler at a time decides (advisory lock).
 */
export async function startQueuedRuns(ex: Executor, dagsById: ReadonlyMap<string, Dag>, limits: RunQueueLimits): Promise<StartedRun[]> {
  if (limits.maxConcurrentRuns === 0) return [];
  await ex.execute(sql`select pg_advisory_xact_lock(74202)`);
  const running = await ex.select({ dagId: dagRuns.dagId, tags: dagRuns.tags, runType: dagRuns.runType }).from(dagRuns).where(eq(dagRuns.state, RunState.RUNNING));
  const queued = await ex.select({ id: dagRuns.id, runId: dagRuns.runId, dagId: dagRuns.dagId, tags: dagRuns.tags, runType: dagRuns.runType }).from(dagRuns)
    .leftJoin(dags, eq(dags.dagId, dagRuns.dagId))
    .where(and(eq(dagRuns.state, RunState.QUEUED), sql`(${dags.isPaused} is not true or ${dagRuns.runType} = ${RunType.BACKFILL})`))
    .orderBy(desc(dagRuns.priority), asc(dagRuns.logicalDate), asc(dagRuns.id)).limit(1000);
  // Backfill runs have their own limit (a run tag, below) instead of the DAG's maxActiveRuns.
  const perDag = new Map<string, number>();
  for (const r of running) if (r.runType !== RunType.BACKFILL) perDag.set(r.dagId, (perDag.get(r.dagId) ?? 0) + 1);
  const started: StartedRun[] = [];
  for (const run of queued) {
    if (limits.maxConcurrentRuns >= 0 && running.length >= limits.maxConcurrentRuns) break;
    const dag = dagsById.get(run.dagId);
    if (!dag) continue;
    const backfill = run.runType === RunType.BACKFILL;
    if (!backfill && (perDag.get(run.dagId) ?? 0) >= dag.maxActiveRuns) continue;
    if (!withinTagLimits(run.tags, running.map((r) => r.tags), [...limits.runTagLimits, ...backfillLimit(run.tags)])) continue;
    await ex.update(dagRuns).set({ state: RunState.RUNNING, startDate: sql`now()` }).where(and(eq(dagRuns.id, run.id), eq(dagRuns.state, RunState.QUEUED)));
    const scheduled = await createTaskInstances(ex, run.id, run.runId, dag);
    started.push({ runPk: run.id, dagId: dag.dagId, scheduled });
    running.push({ dagId: run.dagId, tags: run.tags, runType: run.runType });
    if (!backfill) perDag.set(run.dagId, (perDag.get(run.dagId) ?? 0) + 1);
  }
  return started;
}

/** Run tags a backfill's runs carry: its id, and how many of its runs may run at once. */
export const BACKFILL_TAG = 'updraft.backfill';
export const BACKFILL_MAX_ACTIVE_TAG = 'updraft.backfill_max_active_runs';

function backfillLimit(tags: Record<string, string>): TagLimit[] {
  const limit = Number(tags[BACKFILL_MAX_ACTIVE_TAG]);
  return tags[BACKFILL_TAG] && Number.isInteger(limit) && limit > 0 ? [{ key: BACKFILL_TAG, value: { applyLimitPerUniqueValue: true }, limit }] : [];
}

/** One TI per task; tasks with no upstream start scheduled. Returns how many were scheduled. */
async function createTaskInstances(ex: Executor, runPk: number, runId: string, dag: Dag): Promise<number> {
  const serialized = dag.serialize().tasks;
  // Roots start scheduled, except start-from-trigger ones (evaluateRun defers them), mapped
  // ones (evaluateRun expands them) and dependsOnPast ones (evaluateRun checks the previous run).
  const ready = (t: (typeof serialized)[number]) => !t.upstream.length && !t.startFromTrigger && t.mapped !== 'expand' && !t.dependsOnPast;
  const rows = serialized.map((t) => ({
    runPk, dagId: dag.dagId, runId, taskId: t.taskId, mapIndex: -1,
    state: ready(t) ? TaskState.SCHEDULED : TaskState.NONE,
    // The database's clock, as every other scheduled_at (a worker measures its delay on it).
    scheduledAt: ready(t) ? sql`now()` : null,
    maxTries: t.retries + 1, priorityWeight: t.priorityWeight, pool: t.pool, poolSlots: t.poolSlots,
    queue: t.queue, operator: t.operator,
  }));
  for (let i = 0; i < rows.length; i += 1000) {
    await ex.insert(taskInstances).values(rows.slice(i, i + 1000)).onConflictDoNothing();
  }
  await attachLimitKeys(ex, runPk, dag, dag.tasks.keys());
  return rows.filter((r) => r.state === TaskState.SCHEDULED).length;
}

const UNFINISHED = [TaskState.NONE, TaskState.SCHEDULED, TaskState.RUNNING, TaskState.UP_FOR_RETRY, TaskState.UP_FOR_RESCHEDULE, TaskState.DEFERRED];

/** Close the run if every TI is finished: failed if any leaf failed, else success. */
export async function finishRunIfDone(ex: Executor, runPk: number, dag: Dag): Promise<RunState | null> {
  return (await closeRunIfDone(ex, runPk, dag))?.state ?? null;
}

/** A run a statement just closed: its new state and how long it ran (start → end, seconds). */
export interface ClosedRun {
  state: RunState;
  durationS: number | null;
}

/** finishRunIfDone, returning the closed run's state and duration (null: still open). */
export async function closeRunIfDone(ex: Executor, runPk: number, dag: Dag): Promise<ClosedRun | null> {
  const [row] = resultRows<Record<string, unknown>>(await ex.execute(finishRunIfDoneStatement(runPk, dag)));
  return row ? closedRunOf(row) : null;
}

/** A row of finishRunIfDoneStatement, typed. */
export function closedRunOf(row: Record<string, unknown>): ClosedRun {
  return { state: row.state as RunState, durationS: row.duration_s == null ? null : Number(row.duration_s) };
}

/** Lock runs (in id order, so two lockers never deadlock) for the rest of the transaction. */
export function lockRunsStatement(runPks: number[]): SQL {
  return sql`select id from dag_runs where id in ${[...runPks].sort((a, b) => a - b)} order by id for update`;
}

/**
 * finishRunIfDone as one statement: a row with the run's new state and duration (`duration_s`)
 * when it closed the run, after a NOTIFY on `notifyChannel` if one is given.
 */
export function finishRunIfDoneStatement(runPk: number, dag: Dag, notifyChannel?: Channel): SQL {
  // The leaves go as one JSON parameter (a DAG may have thousands), read only once the run is done.
  return sql`
    with verdict as (
      select not exists (select 1 from task_instances where run_pk = ${runPk} and state in ${UNFINISHED}) as done
    ), closed as (
      update dag_runs r set end_date = now(), state = case when exists (
          select 1 from task_instances where run_pk = ${runPk} and state in ${[TaskState.FAILED, TaskState.UPSTREAM_FAILED]}
            and task_id in (select jsonb_array_elements_text(${leavesJson(dag)}::jsonb))
        ) then ${RunState.FAILED} else ${RunState.SUCCESS} end
      from verdict v where r.id = ${runPk} and r.state = ${RunState.RUNNING} and v.done
      returning r.state, extract(epoch from r.end_date - r.start_date)::float8 as duration_s
    )${queueRunCallbacks(runPk, dag)}
    select state, duration_s${notifyChannel ? sql`, pg_notify(${notifyChannel}, '')` : sql``}${hasRunCallbacks(dag) ? sql`, pg_notify(${Channel.WORKER}, ${CALLBACKS_PAYLOAD})` : sql``} from closed`;
}

const hasRunCallbacks = (dag: Dag) => dag.runCallbacks.success.length + dag.runCallbacks.failed.length > 0;

/** A run closing in a state its DAG has a callback for queues it for a worker, in the same statement. */
function queueRunCallbacks(runPk: number, dag: Dag): SQL {
  const states = [dag.runCallbacks.success.length ? RunState.SUCCESS : null, dag.runCallbacks.failed.length ? RunState.FAILED : null].filter((s) => s !== null);
  if (!states.length) return sql``;
  return sql`, queued_callbacks as (
      insert into callback_requests (scope, kind, dag_id, run_pk)
      select 'dag', case when state = ${RunState.SUCCESS} then 'success' else 'failure' end, ${dag.dagId}, ${runPk} from closed where state in ${states}
    )`;
}

const leaves = new WeakMap<Dag, string>();

/**
 * The tasks whose failure fails the run, as Airflow's: leaves once teardowns are set aside (a
 * teardown counts only with onFailureFailDagrun), or every plain leaf if nothing else is left.
 */
export function effectiveLeaves(dag: Dag): string[] {
  const ignorable = (id: string) => {
    const t = dag.tasks.get(id)!;
    return t.isTeardown && !t.options.onFailureFailDagrun;
  };
  const found = [...dag.tasks.values()].filter((t) => !ignorable(t.taskId) && [...t.downstreamIds].every(ignorable)).map((t) => t.taskId);
  return found.length ? found : [...dag.tasks.values()].filter((t) => t.downstreamIds.size === 0).map((t) => t.taskId);
}

/** The DAG's leaf task ids (effectiveLeaves) as a JSON array, computed once per DAG object. */
function leavesJson(dag: Dag): string {
  let json = leaves.get(dag);
  if (json === undefined) {
    json = JSON.stringify(effectiveLeaves(dag));
    leaves.set(dag, json);
  }
  return json;
}

export async function runningRuns(ex: Executor) {
  return ex.select({ id: dagRuns.id, dagId: dagRuns.dagId }).from(dagRuns).where(eq(dagRuns.state, RunState.RUNNING));
}

/** Queued or running runs of one DAG. */
export async function activeRunCount(ex: Executor, dagId: string): Promise<number> {
  const [row] = await ex.select({ n: sql<number>`count(*)::int` }).from(dagRuns)
    .where(and(eq(dagRuns.dagId, dagId), inArray(dagRuns.state, [RunState.QUEUED, RunState.RUNNING])));
  return Number(row?.n ?? 0);
}

export async function dagIdsWithQueuedRuns(ex: Executor): Promise<string[]> {
  const rows = await ex.selectDistinct({ dagId: dagRuns.dagId }).from(dagRuns).where(eq(dagRuns.state, RunState.QUEUED));
  return rows.map((r) => r.dagId);
}

export async function getRun(ex: Executor, runId: string, dagId?: string) {
  return ex.select().from(dagRuns)
    .where(dagId ? and(eq(dagRuns.runId, runId), eq(dagRuns.dagId, dagId)) : eq(dagRuns.runId, runId)).orderBy(asc(dagRuns.dagId));
}

export async function getRunByPk(ex: Executor, runPk: number) {
  const [row] = await ex.select().from(dagRuns).where(eq(dagRuns.id, runPk));
  return row ?? null;
}

export async function listRuns(ex: Executor, dagId?: string, limit = 50) {
  return ex.select().from(dagRuns).where(dagId ? eq(dagRuns.dagId, dagId) : undefined).orderBy(desc(dagRuns.queuedAt), desc(dagRuns.id)).limit(limit);
}

export async function runTaskInstances(ex: Executor, runPk: number) {
  return ex.select().from(taskInstances).where(eq(taskInstances.runPk, runPk)).orderBy(asc(taskInstances.id));
}

export const isFinishedTaskState = (s: string) => (FINISHED_TASK_STATES as readonly string[]).includes(s);

/** How many of these runs are in each state. */
export async function countRunStates(ex: Executor, runPks: number[]): Promise<Record<string, number>> {
  if (!runPks.length) return {};
  const rows = await ex.select({ state: dagRuns.state, n: sql<number>`count(*)::int` }).from(dagRuns).where(inArray(dagRuns.id, runPks)).groupBy(dagRuns.state);
  return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
}

/** A DAG's runs at these logical dates (a backfill's plan looks for them). */
export async function runsAtLogicalDates(ex: Executor, dagId: string, dates: Date[]) {
  if (!dates.length) return [];
  return ex.select({ id: dagRuns.id, runId: dagRuns.runId, state: dagRuns.state, logicalDate: dagRuns.logicalDate }).from(dagRuns)
    .where(and(eq(dagRuns.dagId, dagId), inArray(dagRuns.logicalDate, dates)));
}

/**
 * Queue a finished run again as a backfill run: its TIs (with their logs) and XComs go, and
 * starting it creates fresh ones. The history of its earlier tries stays.
 */
export async function requeueRunForBackfill(ex: Executor, runPk: number, tags: Record<string, string>, priority: number): Promise<boolean> {
  const [row] = await ex.update(dagRuns).set({
    state: RunState.QUEUED, runType: RunType.BACKFILL, tags, priority, queuedAt: new Date(), startDate: null, endDate: null,
  }).where(and(eq(dagRuns.id, runPk), inArray(dagRuns.state, [RunState.SUCCESS, RunState.FAILED]))).returning({ id: dagRuns.id });
  if (!row) return false;
  await ex.execute(sql`delete from logs where ti_id in (select id from task_instances where run_pk = ${runPk})`);
  await ex.delete(taskInstances).where(eq(taskInstances.runPk, runPk));
  await ex.execute(sql`delete from xcom where run_pk = ${runPk}`);
  return true;
}
