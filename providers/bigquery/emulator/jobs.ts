/**
 * Jobs with BigQuery's lifecycle: PENDING when inserted, RUNNING once the engine takes them,
 * DONE when their SQL has finished and their minimum duration has passed (the server's default,
 * or the job's `emulator-duration-ms` label). A failing statement ends DONE with `errorResult`
 * and `errors`, kept for every later `jobs.get`; `cancel` interrupts the statement and ends the
 * job DONE with a `stopped` error.
 */
import { randomUUID } from 'node:crypto';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Bindings, Engine, StatementResult } from './engine.ts';
import { errorOf, type ErrorProto } from './job-resource.ts';
import { translateStatement } from './sql.ts';
import { duckTypeOf } from './values.ts';

export type JobState = 'PENDING' | 'RUNNING' | 'DONE';

export interface JobRecord {
  projectId: string;
  jobId: string;
  location: string;
  configuration: Record<string, unknown> & { labels?: Record<string, string>; query?: QueryConfig; load?: Record<string, unknown>; jobType?: string };
  state: JobState;
  errorResult?: ErrorProto;
  errors?: ErrorProto[];
  creationTime: number;
  startTime?: number;
  endTime?: number;
  result?: StatementResult;
  /** Settles when the job reaches DONE. */
  done: Promise<void>;
  cancel(): void;
  /** For load jobs: the uploaded bytes, loaded on the job's connection instead of SQL. */
  loader?: (conn: DuckDBConnection) => Promise<number>;
  outputRows?: number;
  inputBytes?: number;
}

export interface QueryConfig {
  query: string;
  useLegacySql?: boolean;
  destinationTable?: { projectId?: string; datasetId: string; tableId: string };
  writeDisposition?: 'WRITE_TRUNCATE' | 'WRITE_APPEND' | 'WRITE_EMPTY';
  createDisposition?: string;
  defaultDataset?: { projectId?: string; datasetId: string };
  dryRun?: boolean;
  queryParameters?: QueryParameter[];
}

export interface QueryParameter {
  name?: string;
  parameterType: { type: string; arrayType?: { type: string } };
  parameterValue: { value?: string | null; arrayValues?: { value?: string | null }[] };
}

/** A dry run's SQL does not parse or bind: the request itself fails (HTTP 400). */
export class DryRunError extends Error {
  override readonly name = 'DryRunError';
}

/**
 * Query parameters as DuckDB binds them: by name (`@x` became `$x`), or in order for `?`. Each
 * is bound as its REST text and cast in SQL to its type, so DuckDB parses it as BigQuery would.
 */
export function bindingsOf(params: QueryParameter[] | undefined): Bindings {
  if (!params?.length) return {};
  const type = (p: QueryParameter) => {
    const t = p.parameterType;
    if (t.type.toUpperCase() !== 'ARRAY') return duckTypeOf({ name: p.name ?? '?', type: t.type });
    return duckTypeOf({ name: p.name ?? '?', type: t.arrayType?.type ?? 'STRING', mode: 'REPEATED' });
  };
  const value = (p: QueryParameter) => (p.parameterType.type.toUpperCase() === 'ARRAY'
    ? JSON.stringify((p.parameterValue?.arrayValues ?? []).map((v) => v.value ?? null))
    : p.parameterValue?.value ?? null);
  if (params.every((p) => p.name)) {
    return { values: Object.fromEntries(params.map((p) => [p.name!, value(p)])), types: Object.fromEntries(params.map((p) => [p.name!, type(p)])) };
  }
  return { values: params.map(value), types: params.map(type) };
}

export const DURATION_LABEL = 'emulator-duration-ms';

export class JobStore {
  private readonly jobs = new Map<string, JobRecord>();
  /** Newest first, for jobs.list. */
  private readonly order: JobRecord[] = [];

  constructor(private readonly engine: Engine, private readonly opts: { defaultDurationMs: number; location: string }) {}

  key(projectId: string, jobId: string): string {
    return `${projectId}:${jobId}`;
  }

  get(projectId: string, jobId: string): JobRecord | undefined {
    return this.jobs.get(this.key(projectId, jobId));
  }

  /** Jobs of a project, newest first. */
  list(projectId: string): JobRecord[] {
    return this.order.filter((j) => j.projectId === projectId);
  }

  get size(): number {
    return this.jobs.size;
  }

  /** Insert a job; null when the id is taken (the caller answers 409). */
  insert(projectId: string, body: { jobReference?: { jobId?: string; location?: string }; configuration?: Record<string, unknown> }, loader?: JobRecord['loader']): JobRecord | null {
    const jobId = body.jobReference?.jobId ?? `job_${randomUUID().replace(/-/g, '')}`;
    if (this.jobs.has(this.key(projectId, jobId))) return null;
    const configuration = { ...(body.configuration ?? {}) } as JobRecord['configuration'];
    configuration.jobType = configuration.query ? 'QUERY' : configuration.load ? 'LOAD' : configuration.copy ? 'COPY' : configuration.extract ? 'EXTRACT' : 'UNKNOWN';
    let finish!: () => void;
    const job: JobRecord = {
      projectId, jobId, location: body.jobReference?.location ?? this.opts.location, configuration, state: 'PENDING',
      creationTime: Date.now(), done: new Promise<void>((r) => { finish = r; }), cancel: () => {}, loader,
    };
    this.jobs.set(this.key(projectId, jobId), job);
    this.order.unshift(job);
    setImmediate(() => void this.run(job).finally(finish));
    return job;
  }

  /**
   * A dry run: nothing runs and nothing is stored. A query's result schema comes from preparing
   * it; other statements must translate and prepare.
   */
  async dryRun(projectId: string, location: string | undefined, configuration: JobRecord['configuration']): Promise<JobRecord> {
    const q = configuration.query;
    if (q?.useLegacySql === true) throw new DryRunError('legacy SQL is not supported by the emulator; set useLegacySql: false');
    const conn = await this.engine.acquire();
    let result: StatementResult;
    try {
      if (q?.defaultDataset?.datasetId) await conn.run(`set schema '${q.defaultDataset.datasetId.replace(/'/g, "''")}'`);
      result = await this.engine.describe(conn, q?.query ?? '', bindingsOf(q?.queryParameters).types);
    } catch (err) {
      throw new DryRunError(errorOf(err).message);
    } finally {
      if (q?.defaultDataset) await conn.run('set schema \'main\'').catch(() => {});
      this.engine.release(conn);
    }
    const now = Date.now();
    return {
      projectId, jobId: '', location: location ?? this.opts.location, configuration: { ...configuration, jobType: 'QUERY' }, state: 'DONE',
      creationTime: now, startTime: now, endTime: now, done: Promise.resolve(), cancel: () => {}, result,
    };
  }

  private async run(job: JobRecord): Promise<void> {
    const labelled = Number(job.configuration.labels?.[DURATION_LABEL]);
    const minMs = Number.isFinite(labelled) && labelled >= 0 ? labelled : this.opts.defaultDurationMs;
    let cancelled = false;
    let wake: () => void = () => {};
    // A DuckDB connection is held only while the job's SQL runs, not through its minimum duration.
    let conn: DuckDBConnection | null = null;
    job.cancel = () => {
      if (job.state === 'DONE') return;
      cancelled = true;
      conn?.interrupt();
      wake();
    };
    job.state = 'RUNNING';
    job.startTime = Date.now();
    const minimum = new Promise<void>((r) => { wake = r; setTimeout(r, minMs).unref?.(); });
    try {
      let outcome: { ok: true; r: StatementResult | undefined } | { ok: false; e: unknown };
      try {
        conn = await this.engine.acquire();
        outcome = { ok: true, r: await this.work(job, conn) };
      } catch (e) {
        outcome = { ok: false, e };
      } finally {
        if (conn) {
          // A job's default dataset must not leak to the next job on this connection.
          if (job.configuration.query?.defaultDataset) await conn.run('set schema \'main\'').catch(() => {});
          this.engine.release(conn);
        }
        conn = null;
      }
      await minimum;
      if (cancelled) this.fail(job, { reason: 'stopped', message: 'Job execution was cancelled: User requested cancellation' });
      else if (outcome.ok) job.result = outcome.r;
      else this.fail(job, errorOf(outcome.e));
    } finally {
      job.state = 'DONE';
      job.endTime = Date.now();
    }
  }

  private async work(job: JobRecord, conn: DuckDBConnection): Promise<StatementResult | undefined> {
    if (job.loader) {
      job.outputRows = await job.loader(conn);
      return undefined;
    }
    const q = job.configuration.query;
    if (!q) throw Object.assign(new Error(`the emulator runs query and load jobs; this is a ${String(job.configuration.jobType).toLowerCase()} job`), { reason: 'invalid' });
    if (q.useLegacySql === true) throw Object.assign(new Error('legacy SQL is not supported by the emulator; set useLegacySql: false'), { reason: 'invalidQuery' });
    if (q.defaultDataset?.datasetId) await conn.run(`set schema '${q.defaultDataset.datasetId.replace(/'/g, "''")}'`);
    const bindings = bindingsOf(q.queryParameters);
    const result = await this.engine.execute(conn, q.query, bindings);
    const dest = q.destinationTable;
    if (dest && result.statementType === 'SELECT') await this.writeDestination(conn, q, dest, bindings);
    return result;
  }

  /** A SELECT with a destination table writes its rows there (truncate, append or empty-only). */
  private async writeDestination(conn: DuckDBConnection, q: QueryConfig, dest: NonNullable<QueryConfig['destinationTable']>, bindings: Bindings): Promise<void> {
    const name = `"${dest.datasetId.replace(/"/g, '""')}"."${dest.tableId.replace(/"/g, '""')}"`;
    const { sql: select } = translateStatement(q.query, bindings.types);
    const values = bindings.values as never;
    const disposition = q.writeDisposition ?? 'WRITE_EMPTY';
    const exists = (await this.engine.table(dest.datasetId, dest.tableId)) !== null;
    if (!exists || disposition === 'WRITE_TRUNCATE') await conn.run(`create or replace table ${name} as ${select}`, values);
    else if (disposition === 'WRITE_APPEND') await conn.run(`insert into ${name} ${select}`, values);
    else throw Object.assign(new Error(`Already Exists: Table ${dest.datasetId}.${dest.tableId} (writeDisposition WRITE_EMPTY)`), { reason: 'duplicate' });
  }

  private fail(job: JobRecord, error: ErrorProto): void {
    job.errorResult = error;
    job.errors = [error];
  }
}

