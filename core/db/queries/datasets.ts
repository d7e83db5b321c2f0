/**
 * Dataset queries: recording events (inside the finish transaction of the TI that produced
 * them), keeping the DAG-to-dataset references in step with the DAGs, and consuming a DAG's
 * pending events when a dataset-triggered run is created for it.
 */
import { sql, type SQL } from 'drizzle-orm';
import { Channel, resultRows, type Executor } from '../client.ts';
import type { Dag } from '../../authoring/dag.ts';
import { conditionUris, outletEventsSchema, withDeclaredOutlets } from '../../authoring/dataset.ts';

/** The payload of the NOTIFY that tells schedulers a DAG has new dataset events. */
export const DATASETS_PAYLOAD = 'datasets';

export interface DatasetEventWrite {
  uri: string;
  extra: Record<string, unknown>;
  dagId: string;
  runId: string;
  taskId: string;
  mapIndex: number;
  timestamp: Date;
}

/** A JSON array as one parameter: one statement text, whatever the number of values. */
const jsonParam = (values: unknown[]): SQL => sql`${JSON.stringify(values)}::jsonb`;

/** Create the datasets that do not exist yet (sorted: concurrent writers wait in one order). */
function ensureDatasetsStatement(uris: string[]): SQL {
  return sql`insert into datasets (uri) select jsonb_array_elements_text(${jsonParam([...new Set(uris)].sort())})
    on conflict (uri) do nothing`;
}

/**
 * Statements recording events, for a transaction: the datasets (created on first use), the
 * events, one pending row per active, unpaused DAG scheduled on each dataset (as Airflow, a
 * paused DAG is not queued), and a NOTIFY to schedulers when anything was queued. Two statements
 * so that the second sees a dataset another transaction created while the first waited on it.
 */
export function writeDatasetEventsStatements(events: DatasetEventWrite[]): SQL[] {
  if (!events.length) return [];
  const rows = events.map((e, ord) => ({
    ord, uri: e.uri, extra: e.extra, dag_id: e.dagId, run_id: e.runId, task_id: e.taskId, map_index: e.mapIndex, ts: e.timestamp.toISOString(),
  }));
  return [ensureDatasetsStatement(events.map((e) => e.uri)), sql`
    with v as (
      select * from jsonb_to_recordset(${jsonParam(rows)})
        as v(ord int, uri text, extra jsonb, dag_id text, run_id text, task_id text, map_index int, ts timestamptz)
    ), events as (
      insert into dataset_events (dataset_id, extra, source_dag_id, source_run_id, source_task_id, source_map_index, timestamp)
      select d.id, v.extra, v.dag_id, v.run_id, v.task_id, v.map_index, v.ts from v join datasets d on d.uri = v.uri order by v.ord
      returning id, dataset_id
    ), queued as (
      insert into pending_dataset_events (dag_id, dataset_id, event_id)
      select s.dag_id, e.dataset_id, e.id from events e
        join dag_schedule_datasets s on s.dataset_id = e.dataset_id
        join dags g on g.dag_id = s.dag_id and g.is_active and not g.is_paused
      returning dag_id
    )
    select pg_notify(${Channel.SCHEDULER}, ${DATASETS_PAYLOAD}) from (select 1 from queued limit 1) q`];
}

export async function writeDatasetEvents(ex: Executor, events: DatasetEventWrite[]): Promise<void> {
  for (const statement of writeDatasetEventsStatements(events)) await ex.execute(statement);
}

/**
 * Events of TIs that succeeded outside a worker (ended by their trigger): their tasks' declared
 * outlets, as last synced, and the events they added before deferring (`carried`, from
 * next_kwargs: checked here, where the JSON comes back from the database).
 */
export async function recordEndedTiEvents(ex: Executor, tis: { dagId: string; runId: string; taskId: string; mapIndex: number; carried: unknown }[]): Promise<void> {
  if (!tis.length) return;
  const declared = resultRows<{ dag_id: string; task_id: string; uri: string }>(await ex.execute(sql`
    select o.dag_id, o.task_id, d.uri from task_outlet_datasets o join datasets d on d.id = o.dataset_id
    join jsonb_to_recordset(${jsonParam(tis.map((t) => ({ dag_id: t.dagId, task_id: t.taskId })))}) as v(dag_id text, task_id text)
      on v.dag_id = o.dag_id and v.task_id = o.task_id`));
  const timestamp = new Date();
  await writeDatasetEvents(ex, tis.flatMap((t) => {
    const carried = outletEventsSchema.safeParse(t.carried ?? []);
    const uris = declared.filter((d) => d.dag_id === t.dagId && d.task_id === t.taskId).map((d) => d.uri);
    return withDeclaredOutlets(uris, carried.success ? carried.data : [])
      .map((e) => ({ ...e, dagId: t.dagId, runId: t.runId, taskId: t.taskId, mapIndex: t.mapIndex, timestamp }));
  }));
}

/**
 * Replace the parsed DAGs' references: which datasets each is scheduled on, and which each
 * task declares as outlets. Pending events of datasets a DAG no longer waits for are dropped.
 */
export async function syncDatasetReferences(ex: Executor, parsed: readonly Dag[]): Promise<void> {
  if (!parsed.length) return;
  const schedules = parsed.flatMap((d) => (d.datasetSchedule ? conditionUris(d.datasetSchedule) : []).map((uri) => ({ dag_id: d.dagId, uri })));
  const outlets = parsed.flatMap((d) => [...d.tasks.values()].flatMap((t) =>
    [...new Set(t.options.outlets.map((o) => o.uri))].map((uri) => ({ dag_id: d.dagId, task_id: t.taskId, uri }))));
  const uris = [...schedules, ...outlets].map((r) => r.uri);
  const dagIds = sql`(select jsonb_array_elements_text(${jsonParam(parsed.map((d) => d.dagId))}))`;
  if (uris.length) await ex.execute(ensureDatasetsStatement(uris));
  await ex.execute(sql`delete from dag_schedule_datasets where dag_id in ${dagIds}`);
  await ex.execute(sql`delete from task_outlet_datasets where dag_id in ${dagIds}`);
  if (schedules.length) {
    await ex.execute(sql`insert into dag_schedule_datasets (dag_id, dataset_id)
      select v.dag_id, d.id from jsonb_to_recordset(${jsonParam(schedules)}) as v(dag_id text, uri text) join datasets d on d.uri = v.uri
      on conflict do nothing`);
  }
  if (outlets.length) {
    await ex.execute(sql`insert into task_outlet_datasets (dag_id, task_id, dataset_id)
      select v.dag_id, v.task_id, d.id from jsonb_to_recordset(${jsonParam(outlets)}) as v(dag_id text, task_id text, uri text)
        join datasets d on d.uri = v.uri
      on conflict do nothing`);
  }
  await ex.execute(sql`delete from pending_dataset_events p where p.dag_id in ${dagIds}
    and not exists (select 1 from dag_schedule_datasets s where s.dag_id = p.dag_id and s.dataset_id = p.dataset_id)`);
}

/** Which of these DAGs have pending events (one index probe each). */
export async function dagsWithPendingEvents(ex: Executor, dagIds: string[]): Promise<string[]> {
  if (!dagIds.length) return [];
  const rows = resultRows<{ dag_id: string }>(await ex.execute(sql`
    select v.dag_id from jsonb_array_elements_text(${jsonParam(dagIds)}) as v(dag_id)
    where exists (select 1 from pending_dataset_events p where p.dag_id = v.dag_id)`));
  return rows.map((r) => r.dag_id);
}

/**
 * Lock a DAG row to create its dataset-triggered run, or null when another scheduler holds it.
 * NO KEY UPDATE: it excludes other schedulers, not the key-share locks that workers' queue
 * inserts take on the row (they would otherwise make this lock skip the DAG).
 */
export async function lockDagForDatasetRun(ex: Executor, dagId: string): Promise<{ isPaused: boolean } | null> {
  const [row] = resultRows<{ is_paused: boolean }>(await ex.execute(sql`
    select is_paused from dags where dag_id = ${dagId} for no key update skip locked`));
  return row ? { isPaused: row.is_paused } : null;
}

/** URIs of the datasets the DAG is scheduled on that have at least one pending event. */
export async function updatedDatasetUris(ex: Executor, dagId: string): Promise<Set<string>> {
  const rows = resultRows<{ uri: string }>(await ex.execute(sql`
    select d.uri from dag_schedule_datasets s join datasets d on d.id = s.dataset_id
    where s.dag_id = ${dagId} and exists (select 1 from pending_dataset_events p where p.dag_id = s.dag_id and p.dataset_id = s.dataset_id)`));
  return new Set(rows.map((r) => r.uri));
}

export interface ConsumedEvent {
  id: number;
  timestamp: Date;
  /** The data interval of the run that produced the event, when it came from a run. */
  sourceIntervalStart: Date | null;
  sourceIntervalEnd: Date | null;
}

/** Delete (consume) every pending event of the DAG; returns them, oldest first. */
export async function consumePendingEvents(ex: Executor, dagId: string): Promise<ConsumedEvent[]> {
  const rows = resultRows<Record<string, string | number | Date | null>>(await ex.execute(sql`
    with consumed as (delete from pending_dataset_events where dag_id = ${dagId} returning event_id)
    select e.id, e.timestamp, r.data_interval_start, r.data_interval_end
    from consumed c join dataset_events e on e.id = c.event_id
      left join dag_runs r on r.dag_id = e.source_dag_id and r.run_id = e.source_run_id
    order by e.id`));
  const date = (v: unknown) => (v === null || v === undefined ? null : new Date(v as string));
  return rows.map((r) => ({
    id: Number(r.id), timestamp: date(r.timestamp)!, sourceIntervalStart: date(r.data_interval_start), sourceIntervalEnd: date(r.data_interval_end),
  }));
}

/** Record which events triggered a run. */
export async function linkRunEvents(ex: Executor, runPk: number, eventIds: number[]): Promise<void> {
  if (!eventIds.length) return;
  await ex.execute(sql`insert into dag_run_dataset_events (run_pk, event_id)
    select ${runPk}, (jsonb_array_elements_text(${jsonParam(eventIds)}))::bigint on conflict do nothing`);
}

export interface DatasetSummary {
  uri: string;
  /** "dag.task" of tasks that declare it as an outlet or have recorded an event for it. */
  producingTasks: string[];
  /** Active DAGs scheduled on it. */
  consumingDags: string[];
  events: number;
  lastEvent: { timestamp: Date; source: string | null } | null;
}

export async function listDatasets(ex: Executor): Promise<DatasetSummary[]> {
  const rows = resultRows<Record<string, unknown>>(await ex.execute(sql`
    select d.uri,
      (select coalesce(jsonb_agg(distinct p.name order by p.name), '[]'::jsonb) from (
        select o.dag_id || '.' || o.task_id as name from task_outlet_datasets o join dags g on g.dag_id = o.dag_id and g.is_active
        where o.dataset_id = d.id
        union select e.source_dag_id || '.' || e.source_task_id from dataset_events e where e.dataset_id = d.id and e.source_task_id is not null
      ) p) as producing,
      (select coalesce(jsonb_agg(s.dag_id order by s.dag_id), '[]'::jsonb) from dag_schedule_datasets s
        join dags g on g.dag_id = s.dag_id and g.is_active where s.dataset_id = d.id) as consuming,
      (select count(*) from dataset_events e where e.dataset_id = d.id)::int as events,
      last.timestamp as last_at, last.source as last_source
    from datasets d left join lateral (
      select e.timestamp, e.source_dag_id || '.' || e.source_task_id as source from dataset_events e
      where e.dataset_id = d.id order by e.id desc limit 1
    ) last on true
    order by d.uri`));
  return rows.map((r) => ({
    uri: String(r.uri), producingTasks: r.producing as string[], consumingDags: r.consuming as string[], events: Number(r.events),
    lastEvent: r.last_at ? { timestamp: new Date(r.last_at as string), source: (r.last_source as string | null) ?? null } : null,
  }));
}

export interface DatasetEventRow {
  id: number;
  timestamp: Date;
  extra: Record<string, unknown>;
  sourceDagId: string | null;
  sourceRunId: string | null;
  sourceTaskId: string | null;
  sourceMapIndex: number | null;
  /** Runs this event triggered, as "dag/run id". */
  triggeredRuns: string[];
}

/** A dataset's events, newest first; null when no dataset has this URI. */
export async function eventsOfDataset(ex: Executor, uri: string, limit = 100): Promise<DatasetEventRow[] | null> {
  const [known] = resultRows<{ id: number }>(await ex.execute(sql`select id from datasets where uri = ${uri}`));
  if (!known) return null;
  const rows = resultRows<Record<string, unknown>>(await ex.execute(sql`
    select e.id, e.timestamp, e.extra, e.source_dag_id, e.source_run_id, e.source_task_id, e.source_map_index,
      (select coalesce(jsonb_agg(r.dag_id || '/' || r.run_id order by r.id), '[]'::jsonb)
        from dag_run_dataset_events l join dag_runs r on r.id = l.run_pk where l.event_id = e.id) as triggered
    from dataset_events e where e.dataset_id = ${known.id} order by e.id desc limit ${limit}`));
  return rows.map((r) => ({
    id: Number(r.id), timestamp: new Date(r.timestamp as string), extra: r.extra as Record<string, unknown>,
    sourceDagId: (r.source_dag_id as string | null) ?? null, sourceRunId: (r.source_run_id as string | null) ?? null,
    sourceTaskId: (r.source_task_id as string | null) ?? null, sourceMapIndex: r.source_map_index === null ? null : Number(r.source_map_index),
    triggeredRuns: r.triggered as string[],
  }));
}

/** The events that triggered a run, oldest first, with their dataset's URI. */
export async function eventsOfRun(ex: Executor, runPk: number): Promise<{ id: number; uri: string; sourceTaskId: string | null; extra: Record<string, unknown> }[]> {
  const rows = resultRows<Record<string, unknown>>(await ex.execute(sql`
    select e.id, d.uri, e.source_task_id, e.extra from dag_run_dataset_events l
      join dataset_events e on e.id = l.event_id join datasets d on d.id = e.dataset_id
    where l.run_pk = ${runPk} order by e.id`));
  return rows.map((r) => ({ id: Number(r.id), uri: String(r.uri), sourceTaskId: (r.source_task_id as string | null) ?? null, extra: r.extra as Record<string, unknown> }));
}
