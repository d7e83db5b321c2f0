/**
 * BigQueryHook: jobs, query results, tables and job listings on one `google_cloud_platform`
 * connection, through `@google-cloud/bigquery`. The client is created once per connection and
 * process; with `api_endpoint` (Updraft's emulator) it sends no credentials and never looks
 * for them.
 *
 *   const bq = await BigQueryHook.create(ctx, 'warehouse');
 *   const rows = await bq.query('select count(*) n from `ds.t` where day = @day', { day: '2026-12-01' });
 */
import { BigQuery, type JobMetadata, type TableMetadata } from '@google-cloud/bigquery';
import { PassThroughClient } from 'google-auth-library';
import { countProviderRequest, type Connection, type TaskLogger } from 'updraft';
import { GCP_DEFAULT_CONN_ID, resolveBigQueryTarget, type BigQueryTarget } from './connection.ts';

export interface BigQueryHookSource {
  connection(connId: string): Promise<Connection>;
  readonly log?: TaskLogger;
}

/** A job's error as BigQuery reports it. */
export interface BigQueryErrorProto {
  reason?: string;
  location?: string;
  message?: string;
}

/** The job resource's parts Updraft reads. */
export interface BigQueryJob {
  jobReference: { projectId: string; jobId: string; location?: string };
  status: { state: 'PENDING' | 'RUNNING' | 'DONE'; errorResult?: BigQueryErrorProto; errors?: BigQueryErrorProto[] };
  statistics?: {
    creationTime?: string;
    startTime?: string;
    endTime?: string;
    totalBytesProcessed?: string;
    query?: { statementType?: string; numDmlAffectedRows?: string; totalBytesBilled?: string; ddlTargetTable?: { projectId: string; datasetId: string; tableId: string } };
    load?: { outputRows?: string };
  };
  configuration?: Record<string, unknown> & { labels?: Record<string, string> };
}

export interface ListJobsOptions {
  stateFilter?: ('done' | 'pending' | 'running')[];
  /** Epoch milliseconds. */
  minCreationTime?: number;
  projection?: 'minimal' | 'full';
  pageToken?: string;
  maxResults?: number;
  allUsers?: boolean;
}

/** A failed job, with BigQuery's own reason, location and message. */
export class BigQueryJobError extends Error {
  override readonly name = 'BigQueryJobError';
  constructor(readonly jobId: string, readonly errorResult: BigQueryErrorProto, readonly errors: BigQueryErrorProto[] = []) {
    super(`BigQuery job ${jobId} failed: ${describeError(errorResult)}${errors.length > 1 ? ` (and ${errors.length - 1} more: ${errors.slice(1, 4).map(describeError).join('; ')})` : ''}`);
  }

  /** A stopped (cancelled) job or an invalid query does not succeed on a retry of the same SQL. */
  get retryable(): boolean {
    return !['invalidQuery', 'invalid', 'notFound', 'duplicate', 'accessDenied', 'stopped'].includes(this.errorResult.reason ?? '');
  }
}

export function describeError(e: BigQueryErrorProto): string {
  return `${e.reason ?? 'error'}${e.location ? ` at ${e.location}` : ''}: ${e.message ?? '(no message)'}`;
}

const clients = new Map<string, BigQuery>();

/**
 * Count one API call by its REST method (jobs.get…) and outcome: `ok`, the HTTP status of an
 * error, or `error`. The client's own retries inside one call count once.
 */
async function counted<T>(method: string, call: Promise<T>): Promise<T> {
  try {
    const out = await call;
    countProviderRequest('bigquery', method, 'ok');
    return out;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    countProviderRequest('bigquery', method, typeof code === 'number' ? code : 'error');
    throw err;
  }
}

/** The process's client for a connection (one per connection and settings). */
export function clientFor(target: BigQueryTarget): BigQuery {
  const key = JSON.stringify(target);
  let client = clients.get(key);
  if (!client) {
    client = new BigQuery({
      projectId: target.projectId,
      location: target.location,
      autoRetry: target.autoRetry,
      maxRetries: target.maxRetries,
      ...(target.apiEndpoint
        ? { apiEndpoint: target.apiEndpoint, authClient: new PassThroughClient() as never }
        : target.credentials ? { credentials: target.credentials as never } : target.keyFilename ? { keyFilename: target.keyFilename } : {}),
    });
    clients.set(key, client);
  }
  return client;
}

export class BigQueryHook {
  readonly client: BigQuery;

  constructor(readonly target: BigQueryTarget, readonly log?: TaskLogger) {
    this.client = clientFor(target);
  }

  /** A hook for a task (`ctx`) or a trigger (`this.runtime`). */
  static async create(source: BigQueryHookSource, connId = GCP_DEFAULT_CONN_ID): Promise<BigQueryHook> {
    return new BigQueryHook(resolveBigQueryTarget(await source.connection(connId)), source.log);
  }

  get projectId(): string {
    return this.target.projectId;
  }

  get location(): string | undefined {
    return this.target.location;
  }

  /** Submit a job; a 409 (the id is taken) reaches the caller as an error with `code` 409. */
  async insertJob(configuration: Record<string, unknown>, options: { jobId?: string; location?: string; labels?: Record<string, string> } = {}): Promise<BigQueryJob> {
    const labels = { ...(configuration.labels as Record<string, string> | undefined), ...options.labels };
    const [job] = await counted('jobs.insert', this.client.createJob({
      configuration: { ...configuration, ...(Object.keys(labels).length ? { labels } : {}) } as never,
      jobId: options.jobId,
      location: options.location ?? this.location,
    }));
    return job.metadata as BigQueryJob;
  }

  async getJob(jobId: string, location = this.location): Promise<BigQueryJob> {
    const [meta] = await counted('jobs.get', this.client.job(jobId, { location }).getMetadata());
    return meta as BigQueryJob;
  }

  async cancelJob(jobId: string, location = this.location): Promise<void> {
    await counted('jobs.cancel', this.client.job(jobId, { location }).cancel());
  }

  /** One page of a query job's rows. */
  async getQueryResults(jobId: string, options: { location?: string; pageToken?: string; maxResults?: number } = {}): Promise<{ rows: Record<string, unknown>[]; pageToken?: string; totalRows?: string }> {
    const [rows, next, response] = await counted('jobs.getQueryResults', this.client.job(jobId, { location: options.location ?? this.location })
      .getQueryResults({ autoPaginate: false, pageToken: options.pageToken, maxResults: options.maxResults }));
    return { rows: rows as Record<string, unknown>[], pageToken: (next as { pageToken?: string } | null)?.pageToken, totalRows: (response as { totalRows?: string } | undefined)?.totalRows };
  }

  /** Run a query and return its rows (for tasks): Standard SQL, `@name` parameters from `params`. */
  async query<T = Record<string, unknown>>(sql: string, params?: Record<string, unknown> | unknown[], options: { location?: string; labels?: Record<string, string> } = {}): Promise<T[]> {
    // The client submits the job and reads its results: counted as one call.
    const [rows] = await counted('query', this.client.query({ query: sql, params, location: options.location ?? this.location, useLegacySql: false, labels: options.labels }));
    return rows as T[];
  }

  async getTable(datasetId: string, tableId: string): Promise<TableMetadata> {
    const [meta] = await counted('tables.get', this.client.dataset(datasetId).table(tableId).getMetadata());
    return meta as TableMetadata;
  }

  /** Create the dataset unless it exists (a 409 from a concurrent create counts as existing). */
  async ensureDataset(datasetId: string, location = this.location): Promise<void> {
    const dataset = this.client.dataset(datasetId);
    const [exists] = await counted('datasets.get', dataset.exists());
    if (exists) return;
    try {
      await counted('datasets.insert', dataset.create({ location }));
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
    }
  }

  /**
   * Upload a local file as a load job into `datasetId.tableId` (`load` as in the REST API:
   * sourceFormat, schema, writeDisposition…). A 409 reaches the caller, as with insertJob.
   */
  async loadFile(file: string, datasetId: string, tableId: string, load: Record<string, unknown>, options: { jobId?: string; location?: string } = {}): Promise<BigQueryJob> {
    // The client puts every other key into configuration.load, where labels don't belong: none here.
    const [job] = await counted('jobs.insert', this.client.dataset(datasetId).table(tableId).createLoadJob(file, { ...load, jobId: options.jobId, location: options.location ?? this.location } as never));
    return job.metadata as BigQueryJob;
  }

  async tableExists(datasetId: string, tableId: string): Promise<boolean> {
    const [exists] = await counted('tables.get', this.client.dataset(datasetId).table(tableId).exists());
    return exists;
  }

  /** One page of the project's jobs (`jobs.list`), newest first. */
  async listJobs(options: ListJobsOptions = {}): Promise<{ jobs: BigQueryJob[]; pageToken?: string }> {
    const [, next, response] = await counted('jobs.list', this.client.getJobs({
      autoPaginate: false, stateFilter: options.stateFilter as never, minCreationTime: options.minCreationTime !== undefined ? String(options.minCreationTime) : undefined,
      projection: options.projection, pageToken: options.pageToken, maxResults: options.maxResults, allUsers: options.allUsers,
    }));
    const jobs = ((response as { jobs?: (BigQueryJob & { state?: string })[] } | undefined)?.jobs ?? []).map((j) => ({ ...j, status: j.status ?? { state: j.state as BigQueryJob['status']['state'] } }));
    return { jobs, pageToken: (next as { pageToken?: string } | null)?.pageToken };
  }
}

/** What the task returns: the job and what it did. */
export interface BigQueryJobSummary {
  jobId: string;
  location: string | null;
  statementType: string | null;
  numDmlAffectedRows: number | null;
  totalBytesBilled: number | null;
  totalBytesProcessed: number | null;
  outputRows: number | null;
  ddlTargetTable: { projectId: string; datasetId: string; tableId: string } | null;
}

export function summaryOf(job: BigQueryJob): BigQueryJobSummary {
  const s = job.statistics ?? {};
  const num = (v: string | undefined) => (v === undefined ? null : Number(v));
  return {
    jobId: job.jobReference.jobId,
    location: job.jobReference.location ?? null,
    statementType: s.query?.statementType ?? null,
    numDmlAffectedRows: num(s.query?.numDmlAffectedRows),
    totalBytesBilled: num(s.query?.totalBytesBilled),
    totalBytesProcessed: num(s.totalBytesProcessed),
    outputRows: num(s.load?.outputRows),
    ddlTargetTable: s.query?.ddlTargetTable ?? null,
  };
}

export type { JobMetadata };
