/**
 * BigQueryInsertJobOperator: submits a query, load, copy or extract job and waits for it,
 * deferred in the triggerer (`deferrable: true`) or awaited on the worker's loop.
 *
 * A job id is deterministic per try: `updraft_<dag>_<task>_<runId>_<mapIndex>_<try>_<hash>`.
 * The same try submitting again (a duplicate delivery, a crash between submit and defer) gets a
 * 409 and reads the job instead: PENDING or RUNNING reattaches, DONE returns its result (or
 * fails with its error), so no second job starts. A try that follows a lost worker (a zombie)
 * first looks at the previous try's job and reattaches to it, or takes its result; only a try
 * after a job failure, or after a user's clear, submits a new job.
 */
import { createHash } from 'node:crypto';
import { BaseOperator, baseOptions, task, type Context, type FunctionTask, type TaskOptions } from 'updraft';
import { GCP_DEFAULT_CONN_ID } from './connection.ts';
import { BigQueryHook, BigQueryJobError, summaryOf, type BigQueryJob, type BigQueryJobSummary } from './hook.ts';
import { pollerFor, type PollMode } from './poller.ts';
import { BigQueryInsertJobTrigger, type BigQueryJobEvent } from './triggers.ts';

export interface BigQueryInsertJobOperatorOptions extends TaskOptions {
  connId?: string;
  /** As in the REST API: `{ query: { query, … } }`, `{ load: … }`, `{ copy: … }` or `{ extract: … }`. `query.query` may name a `.sql` template file. */
  configuration: Record<string, unknown>;
  location?: string;
  labels?: Record<string, string>;
  /** Wait in the triggerer, holding no worker slot (default false: await on the worker's loop). */
  deferrable?: boolean;
  /** Cancel the job when the task is killed (default true). A triggerer restart never cancels. */
  cancelOnKill?: boolean;
  /** The longest pause between polls (default 5 s); young jobs are polled sooner. */
  pollCapMs?: number;
  /** `coalesced` (default): one jobs.list per project and location for every waiting job; `per_job`: jobs.get each. */
  pollMode?: PollMode;
}

const OWN_KEYS = ['connId', 'configuration', 'location', 'labels', 'deferrable', 'cancelOnKill', 'pollCapMs', 'pollMode'];

/** BigQuery's job id rules: letters, digits, `_` and `-`, at most 1,024 characters. */
export function sanitizeJobId(raw: string): string {
  const clean = raw.replace(/[^A-Za-z0-9_-]/g, '_');
  return clean.length <= 1024 ? clean : `${clean.slice(0, 1000)}_${clean.slice(-23)}`;
}

/** A label value: lower case, letters, digits, `_` and `-`, at most 63 characters. */
export function sanitizeLabel(raw: string): string {
  return raw.toLowerCase().replace(/[^a-z0-9_-]/g, '_').slice(0, 63);
}

export function jobIdFor(ti: { dagId: string; taskId: string; runId: string; mapIndex: number }, tryNumber: number, configuration: unknown): string {
  const hash = createHash('sha256').update(JSON.stringify(configuration)).digest('hex').slice(0, 16);
  return sanitizeJobId(`updraft_${ti.dagId}_${ti.taskId}_${ti.runId}_${ti.mapIndex}_${tryNumber}_${hash}`);
}

/** What one insert job needs; the operator's options, or a function task's. */
export interface InsertJobSpec {
  connId: string;
  configuration: Record<string, unknown>;
  location?: string;
  labels: Record<string, string>;
  deferrable: boolean;
  cancelOnKill: boolean;
  pollCapMs?: number;
  pollMode?: PollMode;
}

/** The configuration as submitted: Standard SQL unless said otherwise (the REST API defaults to legacy). */
function submitted(c: Record<string, unknown>): Record<string, unknown> {
  if (!c.query || typeof c.query !== 'object') return c;
  return { ...c, query: { useLegacySql: false, ...(c.query as Record<string, unknown>) } };
}

export function checkConfiguration(configuration: Record<string, unknown> | undefined, where: string): void {
  const kinds = ['query', 'load', 'copy', 'extract'].filter((k) => k in (configuration ?? {}));
  if (kinds.length !== 1) {
    throw new Error(`${where}: a BigQuery job configuration needs exactly one of query, load, copy or extract, got ${kinds.length ? kinds.join(' and ') : 'none'}`);
  }
}

/**
 * Submit (or reattach) and wait: through `defer` into the triggerer when deferrable, else on
 * this loop through the process's coalesced poller.
 */
export async function runInsertJob(ctx: Context, spec: InsertJobSpec, defer: (trigger: BigQueryInsertJobTrigger) => never): Promise<BigQueryJobSummary> {
  const hook = await BigQueryHook.create(ctx, spec.connId);
  const location = spec.location ?? hook.location;
  const configuration = submitted(spec.configuration);
  const labels = { ...spec.labels, 'updraft-dag': sanitizeLabel(ctx.dagId), 'updraft-task': sanitizeLabel(ctx.taskId) };

  let job = await previousTryJob(ctx, hook, configuration, location);
  if (!job) job = await submit(ctx, hook, configuration, jobIdFor(ctx, ctx.tryNumber, configuration), location, labels);
  const jobId = job.jobReference.jobId;
  const where = job.jobReference.location ?? location;
  ctx.log.info('BigQuery job %s (%s): https://console.cloud.google.com/bigquery?project=%s&j=bq:%s:%s&page=queryresults',
    jobId, job.status.state, job.jobReference.projectId, where ?? 'US', jobId);
  if (job.status.state === 'DONE') return finish(job);

  const createdAt = Number(job.statistics?.creationTime ?? Date.now());
  if (spec.deferrable) {
    return defer(new BigQueryInsertJobTrigger({ connId: spec.connId, jobId, location: where, createdAt, pollCapMs: spec.pollCapMs, pollMode: spec.pollMode, cancelOnKill: spec.cancelOnKill }));
  }
  const poller = pollerFor(hook, where, { capMs: spec.pollCapMs, mode: spec.pollMode, log: ctx.log });
  try {
    return finish(await poller.wait(jobId, createdAt, ctx.signal));
  } catch (err) {
    const reason = String((ctx.signal.reason as Error | undefined)?.message ?? '');
    // Killed or timed out: cancel. Handed back at a worker's shutdown: the next run reattaches.
    if (ctx.signal.aborted && spec.cancelOnKill && !/handed back/.test(reason)) {
      await hook.cancelJob(jobId, where).then(() => ctx.log.info('cancelled BigQuery job %s', jobId), (e: Error) => ctx.log.warn('could not cancel BigQuery job %s: %s', jobId, e.message));
    }
    throw err;
  }
}

/** On resume: the job's result, or its error verbatim. */
export async function completeInsertJob(ctx: Context, connId: string, event: BigQueryJobEvent): Promise<BigQueryJobSummary> {
  if (event.status === 'success' && event.summary) return event.summary;
  const hook = await BigQueryHook.create(ctx, connId);
  const job = await hook.getJob(event.jobId, event.location ?? undefined);
  if (event.status === 'error' && !job.status.errorResult) throw new Error(`BigQuery job ${event.jobId}: ${event.message}`);
  return finish(job);
}

function finish(job: BigQueryJob): BigQueryJobSummary {
  const err = job.status.errorResult;
  if (err) throw new BigQueryJobError(job.jobReference.jobId, err, job.status.errors ?? []);
  return summaryOf(job);
}

/** Submit; on a 409 the job of this very id exists (this try submitted it before): read it instead. */
async function submit(ctx: Context, hook: BigQueryHook, configuration: Record<string, unknown>, jobId: string, location: string | undefined, labels: Record<string, string>): Promise<BigQueryJob> {
  try {
    return await hook.insertJob(configuration, { jobId, location, labels });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
    const job = await hook.getJob(jobId, location);
    ctx.log.info('BigQuery job %s already exists (%s): %s', jobId, job.status.state, job.status.state === 'DONE' ? 'taking its result' : 'reattaching');
    return job;
  }
}

/**
 * After a lost worker, the previous try's job may still run, or may have succeeded: reattach
 * to it, or take its result. Null when a new job is due (first try, a failed job, a clear).
 */
async function previousTryJob(ctx: Context, hook: BigQueryHook, configuration: Record<string, unknown>, location: string | undefined): Promise<BigQueryJob | null> {
  const prev = ctx.previousTry;
  if (!prev || !/^ZombieTaskError\b/.test(prev.error ?? '')) return null;
  const prevId = jobIdFor(ctx, prev.tryNumber, configuration);
  let job: BigQueryJob;
  try {
    job = await hook.getJob(prevId, location);
  } catch (err) {
    if ((err as { code?: number }).code === 404) return null;
    throw err;
  }
  if (job.status.state === 'DONE' && job.status.errorResult) {
    ctx.log.info('the previous try\'s BigQuery job %s failed; submitting a new one', prevId);
    return null;
  }
  ctx.log.info('try %d lost its worker; its BigQuery job %s is %s: %s', prev.tryNumber, prevId, job.status.state, job.status.state === 'DONE' ? 'taking its result' : 'reattaching');
  return job;
}

export class BigQueryInsertJobOperator extends BaseOperator {
  static override templateFields = ['configuration', 'labels', 'location'];
  static override templateExt = ['.sql'];

  connId: string;
  configuration: Record<string, unknown>;
  location?: string;
  labels: Record<string, string>;
  readonly deferrable: boolean;
  readonly cancelOnKill: boolean;
  readonly pollCapMs?: number;
  readonly pollMode?: PollMode;

  constructor(options: BigQueryInsertJobOperatorOptions) {
    super(baseOptions(options, OWN_KEYS));
    this.connId = options.connId ?? GCP_DEFAULT_CONN_ID;
    this.configuration = options.configuration;
    this.location = options.location;
    this.labels = options.labels ?? {};
    this.deferrable = options.deferrable ?? false;
    this.cancelOnKill = options.cancelOnKill ?? true;
    this.pollCapMs = options.pollCapMs;
    this.pollMode = options.pollMode;
    checkConfiguration(options.configuration, `task "${this.taskId}"`);
  }

  execute(ctx: Context): Promise<BigQueryJobSummary> {
    return runInsertJob(ctx, this, (trigger) => this.defer({ trigger, method: 'executeComplete' }));
  }

  executeComplete(ctx: Context, event: BigQueryJobEvent): Promise<BigQueryJobSummary> {
    return completeInsertJob(ctx, this.connId, event);
  }
}

export interface BigQueryJobTaskOptions extends Partial<TaskOptions>, Partial<Omit<InsertJobSpec, 'configuration'>> {}

/**
 * A function task that runs one insert job from its input (`{ configuration }` or `{ sql }`):
 * the form to `expand` over many jobs. Deferrable by default.
 */
export function bigQueryJobTask(taskId: string, options: BigQueryJobTaskOptions = {}): FunctionTask<{ configuration?: Record<string, unknown>; sql?: string }, BigQueryJobSummary> {
  const { connId = GCP_DEFAULT_CONN_ID, location, labels = {}, deferrable = true, cancelOnKill = true, pollCapMs, pollMode, ...taskOptions } = options;
  return task({ ...(taskOptions as TaskOptions), taskId }, async (input: { configuration?: Record<string, unknown>; sql?: string }, ctx: Context) => {
    if (ctx.event) return completeInsertJob(ctx, connId, ctx.event as BigQueryJobEvent);
    const configuration = input.configuration ?? (input.sql !== undefined ? { query: { query: input.sql } } : undefined);
    checkConfiguration(configuration, `task "${ctx.taskId}"`);
    return runInsertJob(ctx, { connId, configuration: configuration!, location, labels, deferrable, cancelOnKill, pollCapMs, pollMode }, (trigger) => ctx.defer({ trigger }));
  }) as unknown as FunctionTask<{ configuration?: Record<string, unknown>; sql?: string }, BigQueryJobSummary>;
}
