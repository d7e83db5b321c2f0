/**
 * The metadata schema: the single source of truth for every table Updraft keeps.
 * drizzle-kit generates the SQL migrations in `drizzle/` from this file; PGlite and
 * PostgreSQL run the same migrations and the same queries.
 */
import { sql } from 'drizzle-orm';
import {
  pgTable, text, integer, bigserial, bigint, timestamp, jsonb, boolean, doublePrecision,
  primaryKey, uniqueIndex, index, serial, customType,
} from 'drizzle-orm/pg-core';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => 'bytea' });

/** One row per DAG seen by a DAG processor; `serialized` is what workers and schedulers share. */
export const dags = pgTable('dags', {
  dagId: text('dag_id').primaryKey(),
  fileloc: text('fileloc').notNull(),
  serialized: jsonb('serialized').notNull(),
  schedule: text('schedule'),
  timezone: text('timezone').notNull().default('UTC'),
  isPaused: boolean('is_paused').notNull().default(false),
  /** Copied out of `serialized` so the claim query never detoasts a large DAG. */
  maxActiveTasks: integer('max_active_tasks').notNull().default(16),
  isActive: boolean('is_active').notNull().default(true),
  description: text('description'),
  tags: jsonb('tags').$type<string[]>().notNull().default([]),
  fingerprint: text('fingerprint').notNull(),
  lastParsedAt: ts('last_parsed_at').notNull(),
  /** End of the last data interval a scheduled run was created for. */
  lastIntervalEnd: ts('last_interval_end'),
});

export const importErrors = pgTable('import_errors', {
  fileloc: text('fileloc').primaryKey(),
  error: text('error').notNull(),
  timestamp: ts('timestamp').notNull(),
});

export const dagRuns = pgTable('dag_runs', {
  id: serial('id').primaryKey(),
  dagId: text('dag_id').notNull(),
  runId: text('run_id').notNull(),
  runType: text('run_type').notNull(),
  state: text('state').notNull(),
  logicalDate: ts('logical_date').notNull(),
  dataIntervalStart: ts('data_interval_start'),
  dataIntervalEnd: ts('data_interval_end'),
  conf: jsonb('conf').notNull().default({}),
  /** Run-queue order: higher first, then FIFO by queued_at. */
  priority: integer('priority').notNull().default(0),
  /** Run tags, matched by the run queue's tag concurrency limits. */
  tags: jsonb('tags').$type<Record<string, string>>().notNull().default({}),
  queuedAt: ts('queued_at').notNull(),
  startDate: ts('start_date'),
  endDate: ts('end_date'),
}, (t) => [
  uniqueIndex('dag_runs_dag_run_id').on(t.dagId, t.runId),
  uniqueIndex('dag_runs_dag_logical_date').on(t.dagId, t.logicalDate),
  index('dag_runs_state').on(t.state),
]);

export const taskInstances = pgTable('task_instances', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  runPk: integer('run_pk').notNull().references(() => dagRuns.id, { onDelete: 'cascade' }),
  dagId: text('dag_id').notNull(),
  runId: text('run_id').notNull(),
  taskId: text('task_id').notNull(),
  mapIndex: integer('map_index').notNull().default(-1),
  state: text('state').notNull(),
  tryNumber: integer('try_number').notNull().default(0),
  maxTries: integer('max_tries').notNull().default(0),
  priorityWeight: integer('priority_weight').notNull().default(1),
  pool: text('pool').notNull().default('default_pool'),
  poolSlots: integer('pool_slots').notNull().default(1),
  queue: text('queue').notNull().default('default'),
  operator: text('operator').notNull(),
  workerId: text('worker_id'),
  heartbeatAt: ts('heartbeat_at'),
  scheduledAt: ts('scheduled_at'),
  startDate: ts('start_date'),
  endDate: ts('end_date'),
  duration: doublePrecision('duration'),
  nextRetryAt: ts('next_retry_at'),
  nextMethod: text('next_method'),
  nextKwargs: jsonb('next_kwargs'),
  triggerId: bigint('trigger_id', { mode: 'number' }),
  triggerTimeout: ts('trigger_timeout'),
  error: text('error'),
  /** A mapped TI's own resolved input, written at expansion so it never re-reads the whole list. */
  mapInput: jsonb('map_input'),
  /** Live progress of an iterate TI: { done, failed, total }. */
  progress: jsonb('progress'),
  /** When a sensor in reschedule mode (state up_for_reschedule) pokes again. */
  rescheduleDate: ts('reschedule_date'),
}, (t) => [
  uniqueIndex('ti_run_task_map').on(t.runPk, t.taskId, t.mapIndex),
  // Matches the claim's order exactly, so claiming never sorts the whole backlog. Partial
  // indexes are only written for rows they cover: a claim or a finish touches fewer indexes.
  index('ti_claim_order').on(t.queue, t.priorityWeight.desc(), t.scheduledAt, t.id).where(sql`state = 'scheduled'`),
  index('ti_running').on(t.workerId, t.dagId).where(sql`state = 'running'`),
  // (run, state) for "is anything left open"; with the task, "does this task have a TI in this
  // state" is one probe, however many TIs a mapped task has.
  index('ti_run_state_task').on(t.runPk, t.state, t.taskId),
  index('ti_trigger').on(t.triggerId).where(sql`trigger_id is not null`),
  // TIs holding a slot of an include-deferred pool without running (the claim's pool usage).
  index('ti_pool_held_deferred').on(t.pool).where(sql`state = 'deferred' or (state = 'scheduled' and next_method is not null)`),
  index('ti_deferred_retry').on(t.state, t.nextRetryAt).where(sql`state in ('deferred', 'up_for_retry')`),
  index('ti_reschedule').on(t.rescheduleDate).where(sql`state = 'up_for_reschedule'`),
]);

/** Every finished try, kept after the live row moves on. */
export const taskInstanceHistory = pgTable('task_instance_history', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  tiId: bigint('ti_id', { mode: 'number' }).notNull(),
  dagId: text('dag_id').notNull(),
  runId: text('run_id').notNull(),
  taskId: text('task_id').notNull(),
  mapIndex: integer('map_index').notNull(),
  tryNumber: integer('try_number').notNull(),
  state: text('state').notNull(),
  workerId: text('worker_id'),
  startDate: ts('start_date'),
  endDate: ts('end_date'),
  duration: doublePrecision('duration'),
  error: text('error'),
}, (t) => [index('tih_ti').on(t.tiId, t.tryNumber)]);

/**
 * Concurrency limits a TI is subject to beyond its pool and its DAG's maxActiveTasks, one row
 * per limit (maxActiveTisPerDag, maxActiveTisPerDagrun, tag limits). The claim counts running
 * TIs per key, so any number of limit kinds share one mechanism.
 */
export const tiLimitKeys = pgTable('ti_limit_keys', {
  tiId: bigint('ti_id', { mode: 'number' }).notNull().references(() => taskInstances.id, { onDelete: 'cascade' }),
  key: text('key').notNull(),
  limit: integer('limit').notNull(),
}, (t) => [primaryKey({ columns: [t.tiId, t.key] }), index('ti_limit_keys_key').on(t.key)]);

/** Checkpoints of an iterate TI: one row per finished item, written in batches. */
export const iterateItems = pgTable('iterate_items', {
  tiId: bigint('ti_id', { mode: 'number' }).notNull().references(() => taskInstances.id, { onDelete: 'cascade' }),
  itemIndex: integer('item_index').notNull(),
  state: text('state').notNull(),
  result: jsonb('result'),
  error: text('error'),
  attempts: integer('attempts').notNull(),
  finishedAt: ts('finished_at').notNull(),
}, (t) => [primaryKey({ columns: [t.tiId, t.itemIndex] })]);

export const xcom = pgTable('xcom', {
  runPk: integer('run_pk').notNull().references(() => dagRuns.id, { onDelete: 'cascade' }),
  taskId: text('task_id').notNull(),
  mapIndex: integer('map_index').notNull().default(-1),
  key: text('key').notNull(),
  /** The JSON value inline; for a large value, what `codec` needs to find it (see xcom/). */
  value: jsonb('value'),
  /** null: `value` is the value. Else how it is kept: 'gzip' (bytes in `data`), 'file' or 'file+gzip'. */
  codec: text('codec'),
  data: bytea('data'),
  /** Bytes of the value's JSON, for values not inline. */
  size: integer('size'),
  createdAt: ts('created_at').notNull(),
}, (t) => [primaryKey({ columns: [t.runPk, t.taskId, t.mapIndex, t.key] })]);

/** Serialized triggers; rows name a registered trigger class, never a module path. */
export const triggers = pgTable('triggers', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  name: text('name').notNull(),
  /** JSON, or AES-256-GCM sealed JSON when UPDRAFT_SECRET_KEY is set. */
  kwargs: text('kwargs').notNull(),
  /** Identity of (name, kwargs): identical waiting triggers share one row and one run. */
  hash: text('hash').notNull(),
  createdDate: ts('created_date').notNull(),
  triggererId: text('triggerer_id'),
  claimedAt: ts('claimed_at'),
}, (t) => [
  uniqueIndex('triggers_hash').on(t.hash),
  index('triggers_triggerer').on(t.triggererId),
]);

export const pools = pgTable('pools', {
  name: text('name').primaryKey(),
  slots: integer('slots').notNull(),
  description: text('description'),
  includeDeferred: boolean('include_deferred').notNull().default(false),
});

/** Connections; password and extra are sealed text (see secrets/secret-box.ts), never plain. */
export const connections = pgTable('connections', {
  connId: text('conn_id').primaryKey(),
  connType: text('conn_type').notNull(),
  description: text('description'),
  host: text('host'),
  port: integer('port'),
  login: text('login'),
  password: text('password'),
  schema: text('schema'),
  extra: text('extra'),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

/** Variables; the value is sealed text. */
export const variables = pgTable('variables', {
  key: text('key').primaryKey(),
  val: text('val').notNull(),
  description: text('description'),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

export const logs = pgTable('logs', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  tiId: bigint('ti_id', { mode: 'number' }).notNull(),
  tryNumber: integer('try_number').notNull(),
  ts: ts('ts').notNull(),
  level: text('level').notNull(),
  message: text('message').notNull(),
  /** Who wrote the line: the task itself ('task') or the triggerer while it waited ('triggerer'). */
  source: text('source').notNull().default('task'),
}, (t) => [index('logs_ti_try').on(t.tiId, t.tryNumber)]);

/** Each TI's templated fields as its latest try rendered them, secrets masked. */
export const renderedFields = pgTable('rendered_fields', {
  tiId: bigint('ti_id', { mode: 'number' }).primaryKey().references(() => taskInstances.id, { onDelete: 'cascade' }),
  tryNumber: integer('try_number').notNull(),
  fields: jsonb('fields').notNull(),
  renderedAt: ts('rendered_at').notNull(),
});

/** A heartbeat row per scheduler, worker and triggerer process. */
export const jobs = pgTable('jobs', {
  id: text('id').primaryKey(),
  jobType: text('job_type').notNull(),
  hostname: text('hostname').notNull(),
  pid: integer('pid').notNull(),
  state: text('state').notNull(),
  startDate: ts('start_date').notNull(),
  latestHeartbeat: ts('latest_heartbeat').notNull(),
  endDate: ts('end_date'),
  /** What the process reports with each heartbeat (a triggerer: capacity, triggers running, loop lag). */
  info: jsonb('info').$type<Record<string, unknown>>(),
}, (t) => [index('jobs_type_hb').on(t.jobType, t.latestHeartbeat)]);

/** Datasets by URI; a row is created when a DAG first names the URI or a task first updates it. */
export const datasets = pgTable('datasets', {
  id: serial('id').primaryKey(),
  uri: text('uri').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
}, (t) => [uniqueIndex('datasets_uri').on(t.uri)]);

/** One row per update of a dataset: written in the finish transaction of the TI that made it. */
export const datasetEvents = pgTable('dataset_events', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  datasetId: integer('dataset_id').notNull().references(() => datasets.id, { onDelete: 'cascade' }),
  extra: jsonb('extra').$type<Record<string, unknown>>().notNull().default({}),
  sourceDagId: text('source_dag_id'),
  sourceRunId: text('source_run_id'),
  sourceTaskId: text('source_task_id'),
  sourceMapIndex: integer('source_map_index'),
  timestamp: ts('timestamp').notNull(),
}, (t) => [index('dataset_events_dataset').on(t.datasetId, t.id)]);

/** Which DAGs are scheduled on which datasets; replaced whenever the DAGs are synced. */
export const dagScheduleDatasets = pgTable('dag_schedule_datasets', {
  dagId: text('dag_id').notNull().references(() => dags.dagId, { onDelete: 'cascade' }),
  datasetId: integer('dataset_id').notNull().references(() => datasets.id, { onDelete: 'cascade' }),
}, (t) => [primaryKey({ columns: [t.dagId, t.datasetId] }), index('dag_schedule_datasets_dataset').on(t.datasetId)]);

/** Which tasks declare which datasets as outlets (synced with the DAGs). */
export const taskOutletDatasets = pgTable('task_outlet_datasets', {
  dagId: text('dag_id').notNull().references(() => dags.dagId, { onDelete: 'cascade' }),
  taskId: text('task_id').notNull(),
  datasetId: integer('dataset_id').notNull().references(() => datasets.id, { onDelete: 'cascade' }),
}, (t) => [primaryKey({ columns: [t.dagId, t.taskId, t.datasetId] }), index('task_outlet_datasets_dataset').on(t.datasetId)]);

/**
 * Events not yet consumed by a DAG scheduled on their dataset, queued in the transaction that
 * wrote the event. Creating a dataset-triggered run deletes (consumes) the DAG's rows, so rows a
 * transaction still in flight adds are never skipped, as a "last event id seen" mark could be.
 */
export const pendingDatasetEvents = pgTable('pending_dataset_events', {
  dagId: text('dag_id').notNull().references(() => dags.dagId, { onDelete: 'cascade' }),
  eventId: bigint('event_id', { mode: 'number' }).notNull().references(() => datasetEvents.id, { onDelete: 'cascade' }),
  datasetId: integer('dataset_id').notNull(),
}, (t) => [
  // Led by (dag, dataset): "does this dataset have a new event for this DAG" is one probe.
  primaryKey({ columns: [t.dagId, t.datasetId, t.eventId] }),
  index('pending_dataset_events_event').on(t.eventId),
]);

/** The events that triggered each dataset-triggered run. */
export const dagRunDatasetEvents = pgTable('dag_run_dataset_events', {
  runPk: integer('run_pk').notNull().references(() => dagRuns.id, { onDelete: 'cascade' }),
  eventId: bigint('event_id', { mode: 'number' }).notNull().references(() => datasetEvents.id, { onDelete: 'cascade' }),
}, (t) => [primaryKey({ columns: [t.runPk, t.eventId] }), index('dag_run_dataset_events_event').on(t.eventId)]);

/**
 * Callbacks to run on a worker, queued in the transaction that decided them: a TI failed or
 * retried by the scheduler (a zombie) or a run that closed. A worker claims a row (a lease:
 * worker_id, claimed_at), runs the callback with the DAG loaded, and deletes it.
 */
export const callbackRequests = pgTable('callback_requests', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  /** 'task' (ti_id set) or 'dag' (the run's callback). */
  scope: text('scope').notNull(),
  /** Which callback: 'success', 'failure', 'retry', 'skipped' or 'execute'. */
  kind: text('kind').notNull(),
  dagId: text('dag_id').notNull(),
  runPk: integer('run_pk').notNull().references(() => dagRuns.id, { onDelete: 'cascade' }),
  tiId: bigint('ti_id', { mode: 'number' }),
  tryNumber: integer('try_number'),
  /** The error the callback receives, as "Name: message". */
  error: text('error'),
  createdAt: ts('created_at').notNull().defaultNow(),
  workerId: text('worker_id'),
  claimedAt: ts('claimed_at'),
}, (t) => [index('callback_requests_claim').on(t.claimedAt, t.id)]);
