/**
 * Reads for the web UI and REST API: paginated lists, the grid of runs × tasks, one TI with
 * its tries and trigger, and the triggerers with what they report. Nothing here writes.
 */
import { and, asc, count, desc, eq, gt, ilike, lt, sql, type SQL } from 'drizzle-orm';
import { resultRows, type Executor } from '../client.ts';
import { dagRuns, dags, jobs, logs, taskInstanceHistory, taskInstances, triggers } from '../schema.ts';
import { TaskState } from '../../model/states.ts';

export interface Page {
  limit: number;
  offset: number;
}

export async function dagsPage(ex: Executor, page: Page, filter: { paused?: boolean; search?: string; tag?: string } = {}) {
  const where = and(
    eq(dags.isActive, true),
    filter.paused === undefined ? undefined : eq(dags.isPaused, filter.paused),
    filter.search ? ilike(dags.dagId, `%${filter.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`) : undefined,
    filter.tag ? sql`${dags.tags} @> ${JSON.stringify([filter.tag])}::jsonb` : undefined,
  );
  const rows = await ex.select({
    dagId: dags.dagId, description: dags.description, schedule: dags.schedule, timezone: dags.timezone, isPaused: dags.isPaused,
    tags: dags.tags, fileloc: dags.fileloc, lastParsedAt: dags.lastParsedAt, lastIntervalEnd: dags.lastIntervalEnd,
  }).from(dags).where(where).orderBy(asc(dags.dagId)).limit(page.limit).offset(page.offset);
  const [{ total }] = await ex.select({ total: count() }).from(dags).where(where);
  return { rows, total: Number(total) };
}

/** The latest `perDag` runs of each DAG, newest first. */
export async function latestRuns(ex: Executor, dagIds: string[], perDag: number) {
  if (!dagIds.length) return [];
  return resultRows<{ dag_id: string; run_id: string; state: string; logical_date: string; run_type: string }>(await ex.execute(sql`
    select r.dag_id, r.run_id, r.state, r.logical_date, r.run_type from unnest(${pgTextArray(dagIds)}) as d(dag_id)
    cross join lateral (select * from dag_runs r where r.dag_id = d.dag_id order by r.logical_date desc limit ${perDag}) r`));
}

function pgTextArray(values: string[]): SQL {
  return sql`${`{${values.map((v) => `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"`).join(',')}}`}::text[]`;
}

export async function getDag(ex: Executor, dagId: string) {
  const [row] = await ex.select().from(dags).where(eq(dags.dagId, dagId));
  return row ?? null;
}

export async function runsPage(ex: Executor, dagId: string, page: Page, state?: string) {
  const where = and(eq(dagRuns.dagId, dagId), state ? eq(dagRuns.state, state) : undefined);
  const rows = await ex.select().from(dagRuns).where(where).orderBy(desc(dagRuns.logicalDate), desc(dagRuns.id)).limit(page.limit).offset(page.offset);
  const [{ total }] = await ex.select({ total: count() }).from(dagRuns).where(where);
  return { rows, total: Number(total) };
}

/** The grid's runs: the newest `limit` by logical date, before a logical date when paging back. */
export async function gridRuns(ex: Executor, dagId: string, limit: number, before?: Date) {
  return ex.select({
    id: dagRuns.id, runId: dagRuns.runId, state: dagRuns.state, runType: dagRuns.runType, logicalDate: dagRuns.logicalDate,
    startDate: dagRuns.startDate, endDate: dagRuns.endDate,
  }).from(dagRuns).where(and(eq(dagRuns.dagId, dagId), before ? lt(dagRuns.logicalDate, before) : undefined))
    .orderBy(desc(dagRuns.logicalDate), desc(dagRuns.id)).limit(limit);
}

/**
 * TI counts per run, task and state, as one text per run ("task\tstate\tcount" lines): a run
 * of 500 tasks is one row to decode instead of 500.
 */
export async function gridCells(ex: Executor, runPks: number[]): Promise<{ runPk: number; taskId: string; state: string; n: number }[]> {
  if (!runPks.length) return [];
  const rows = resultRows<{ run_pk: number; cells: string }>(await ex.execute(sql`
    select run_pk, string_agg(task_id || E'\t' || state || E'\t' || n, E'\n') as cells from (
      select run_pk, task_id, state, count(*) as n from task_instances
      where run_pk = any(${`{${runPks.join(',')}}`}::int[]) group by run_pk, task_id, state
    ) c group by run_pk`));
  const out: { runPk: number; taskId: string; state: string; n: number }[] = [];
  for (const r of rows) {
    const runPk = Number(r.run_pk);
    for (const line of r.cells.split('\n')) {
      const [taskId, state, n] = line.split('\t');
      out.push({ runPk, taskId, state, n: Number(n) });
    }
  }
  return out;
}

/** A DAG's fingerprint: callers cache what they derive from its serialized form by it. */
export async function dagFingerprint(ex: Executor, dagId: string): Promise<{ fingerprint: string; isActive: boolean } | null> {
  const [row] = await ex.select({ fingerprint: dags.fingerprint, isActive: dags.isActive }).from(dags).where(eq(dags.dagId, dagId));
  return row ?? null;
}

export async function runTis(ex: Executor, runPk: number, page: Page, filter: { taskId?: string; state?: string } = {}) {
  const where = and(eq(taskInstances.runPk, runPk), filter.taskId ? eq(taskInstances.taskId, filter.taskId) : undefined, filter.state ? eq(taskInstances.state, filter.state) : undefined);
  const rows = await ex.select(tiColumns).from(taskInstances).where(where).orderBy(asc(taskInstances.taskId), asc(taskInstances.mapIndex)).limit(page.limit).offset(page.offset);
  const [{ total }] = await ex.select({ total: count() }).from(taskInstances).where(where);
  return { rows, total: Number(total) };
}

const tiColumns = {
  id: taskInstances.id, taskId: taskInstances.taskId, mapIndex: taskInstances.mapIndex, state: taskInstances.state,
  tryNumber: taskInstances.tryNumber, maxTries: taskInstances.maxTries, operator: taskInstances.operator, pool: taskInstances.pool,
  queue: taskInstances.queue, workerId: taskInstances.workerId, startDate: taskInstances.startDate, endDate: taskInstances.endDate,
  duration: taskInstances.duration, error: taskInstances.error, triggerId: taskInstances.triggerId, nextRetryAt: taskInstances.nextRetryAt,
  rescheduleDate: taskInstances.rescheduleDate, progress: taskInstances.progress,
};

export async function getTi(ex: Executor, runPk: number, taskId: string, mapIndex: number) {
  const [row] = await ex.select(tiColumns).from(taskInstances)
    .where(and(eq(taskInstances.runPk, runPk), eq(taskInstances.taskId, taskId), eq(taskInstances.mapIndex, mapIndex)));
  return row ?? null;
}

/** Finished tries of a TI, oldest first (the live row is the current try). */
export async function tiHistory(ex: Executor, tiId: number) {
  return ex.select({
    tryNumber: taskInstanceHistory.tryNumber, state: taskInstanceHistory.state, workerId: taskInstanceHistory.workerId,
    startDate: taskInstanceHistory.startDate, endDate: taskInstanceHistory.endDate, duration: taskInstanceHistory.duration, error: taskInstanceHistory.error,
  }).from(taskInstanceHistory).where(eq(taskInstanceHistory.tiId, tiId)).orderBy(asc(taskInstanceHistory.tryNumber), asc(taskInstanceHistory.id));
}

export async function getTrigger(ex: Executor, triggerId: number) {
  const [row] = await ex.select({
    id: triggers.id, name: triggers.name, kwargs: triggers.kwargs, triggererId: triggers.triggererId, createdDate: triggers.createdDate,
    ageSeconds: sql<number>`extract(epoch from now() - ${triggers.createdDate})::float8`.mapWith(Number),
  }).from(triggers).where(eq(triggers.id, triggerId));
  return row ?? null;
}

/** Triggers with the TIs waiting on each, newest first. */
export async function triggersPage(ex: Executor, page: Page) {
  const rows = await ex.select({
    id: triggers.id, name: triggers.name, triggererId: triggers.triggererId, createdDate: triggers.createdDate,
    waiting: sql<{ dagId: string; runId: string; taskId: string; mapIndex: number }[]>`coalesce((select jsonb_agg(jsonb_build_object(
      'dagId', ti.dag_id, 'runId', ti.run_id, 'taskId', ti.task_id, 'mapIndex', ti.map_index) order by ti.id)
      from task_instances ti where ti.trigger_id = "triggers"."id" and ti.state = ${TaskState.DEFERRED}), '[]'::jsonb)`,
  }).from(triggers).orderBy(desc(triggers.id)).limit(page.limit).offset(page.offset);
  const [{ total }] = await ex.select({ total: count() }).from(triggers);
  return { rows, total: Number(total) };
}

/** Running service processes (and those that ended in the last hour) with their latest report. */
export async function listJobs(ex: Executor, jobType?: string) {
  return ex.select({
    id: jobs.id, jobType: jobs.jobType, hostname: jobs.hostname, pid: jobs.pid, state: jobs.state, startDate: jobs.startDate,
    latestHeartbeat: jobs.latestHeartbeat, endDate: jobs.endDate, info: jobs.info,
    ageSeconds: sql<number>`extract(epoch from now() - ${jobs.latestHeartbeat})::float8`.mapWith(Number),
    triggers: sql<number>`(select count(*) from triggers t where t.triggerer_id = "jobs"."id")::int`.mapWith(Number),
  }).from(jobs).where(and(jobType ? eq(jobs.jobType, jobType) : undefined, sql`(${jobs.state} = 'running' or ${jobs.endDate} > now() - interval '1 hour')`))
    .orderBy(asc(jobs.jobType), desc(jobs.latestHeartbeat));
}

/** A try's log lines after a line id, in write order: the UI tails a running TI with it. */
export async function logsAfter(ex: Executor, tiId: number, tryNumber: number, afterId: number, limit: number) {
  return ex.select({ id: logs.id, tryNumber: logs.tryNumber, ts: logs.ts, level: logs.level, message: logs.message, source: logs.source }).from(logs)
    .where(and(eq(logs.tiId, tiId), eq(logs.tryNumber, tryNumber), gt(logs.id, afterId)))
    .orderBy(asc(logs.id)).limit(limit);
}
