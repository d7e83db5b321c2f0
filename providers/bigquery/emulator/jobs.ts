/**
 * Jobs with BigQuery's lifecycle: PENDING when inserted, RUNNING once the engine takes them,
 * DONE when their SQL has finished and their minimum duration has passed (the server's default,
 * or the job's `emulator-duration-ms` label). A failing statement ends DONE with `errorResult`
 * and `errors`, kept for every later `jobs.get`; `cancel` interrupts the statement and ends the
 * job DONE with a `stopped` error.
 */
import { randomUUID } from 'node:crypto';
import { timestampCell, type Engine, type FieldSchema, type StatementResult } from './engine.ts';
import { classify, splitStatements, translate, UnsupportedSqlError } from './sql.ts';

export interface ErrorProto {
  reason: string;
  message: string;
  location?: string;
  debugInfo?: string;
}

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
  /** For load jobs: the uploaded bytes, run instead of SQL. */
  loader?: () => Promise<number>;
  outputRows?: number;
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
  parameterType: { type: string };
  parameterValue: { value?: string | null };
}

/** A dry run's SQL does not parse or bind: the request itself fails (HTTP 400). */
export class DryRunError extends Error {
  override readonly name = 'DryRunError';
}

/** Query parameters as DuckDB binds them: by name (`@x` became `$x`), or in order for `?`. */
export function bindingsOf(params: QueryParameter[] | undefined): Record<string, unknown> | unknown[] | undefined {
  if (!params?.length) return undefined;
  const value = (p: QueryParameter) => {
    const v = p.parameterValue?.value ?? null;
    if (v === null) return null;
    const t = p.parameterType.type.toUpperCase();
    if (t === 'INT64' || t === 'INTEGER' || t === 'FLOAT64' || t === 'FLOAT' || t === 'NUMERIC') return Number(v);
    if (t === 'BOOL' || t === 'BOOLEAN') return v === 'true';
    return v;
  };
  return params.every((p) => p.name) ? Object.fromEntries(params.map((p) => [p.name!, value(p)])) : params.map(value);
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
  insert(projectId: string, body: { jobReference?: { jobId?: string; location?: string }; configuration?: Record<string, unknown> }, loader?: () => Promise<number>): JobRecord | null {
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

  /** A dry run: every statement must parse and bind; nothing runs and nothing is stored. */
  async dryRun(projectId: string, location: string | undefined, configuration: JobRecord['configuration']): Promise<JobRecord> {
    const sql = configuration.query?.query ?? '';
    const statements = splitStatements(sql);
    if (!statements.length) throw new DryRunError('the query is empty');
    const conn = await this.engine.acquire();
    try {
      for (const statement of statements) await conn.prepare(translate(statement));
    } catch (err) {
      throw new DryRunError(String((err as Error).message).split('\n')[0]);
    } finally {
      this.engine.release(conn);
    }
    const now = Date.now();
    return {
      projectId, jobId: '', location: location ?? this.opts.location, configuration: { ...configuration, jobType: 'QUERY' }, state: 'DONE',
      creationTime: now, startTime: now, endTime: now, done: Promise.resolve(), cancel: () => {},
      result: { statementType: statements.length > 1 ? 'SCRIPT' : classify(statements[0]).type, schema: [], rows: [] },
    };
  }

  private async run(job: JobRecord): Promise<void> {
    const labelled = Number(job.configuration.labels?.[DURATION_LABEL]);
    const minMs = Number.isFinite(labelled) && labelled >= 0 ? labelled : this.opts.defaultDurationMs;
    let cancelled = false;
    let wake: () => void = () => {};
    // A DuckDB connection is held only while the job's SQL runs, not through its minimum duration.
    let conn: Awaited<ReturnType<Engine['acquire']>> | null = null;
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

  private async work(job: JobRecord, conn: Awaited<ReturnType<Engine['acquire']>>): Promise<StatementResult | undefined> {
    if (job.loader) {
      job.outputRows = await job.loader();
      return undefined;
    }
    const q = job.configuration.query;
    if (!q) throw Object.assign(new Error(`the emulator runs query and load jobs; this is a ${String(job.configuration.jobType).toLowerCase()} job`), { reason: 'invalid' });
    if (q.useLegacySql === true) throw Object.assign(new Error('legacy SQL is not supported by the emulator; set useLegacySql: false'), { reason: 'invalidQuery' });
    if (q.defaultDataset?.datasetId) await conn.run(`set schema '${q.defaultDataset.datasetId.replace(/'/g, "''")}'`);
    const result = await this.engine.execute(conn, q.query, bindingsOf(q.queryParameters));
    const dest = q.destinationTable;
    if (dest && result.statementType === 'SELECT') await this.writeDestination(conn, q, dest);
    return result;
  }

  /** A SELECT with a destination table writes its rows there (truncate, append or empty-only). */
  private async writeDestination(conn: Awaited<ReturnType<Engine['acquire']>>, q: QueryConfig, dest: NonNullable<QueryConfig['destinationTable']>): Promise<void> {
    const name = `"${dest.datasetId.replace(/"/g, '""')}"."${dest.tableId.replace(/"/g, '""')}"`;
    const select = translate(q.query);
    const disposition = q.writeDisposition ?? 'WRITE_EMPTY';
    const exists = (await this.engine.table(dest.datasetId, dest.tableId)) !== null;
    if (!exists || disposition === 'WRITE_TRUNCATE') await conn.run(`create or replace table ${name} as ${select}`);
    else if (disposition === 'WRITE_APPEND') await conn.run(`insert into ${name} ${select}`);
    else throw Object.assign(new Error(`Already Exists: Table ${dest.datasetId}.${dest.tableId} (writeDisposition WRITE_EMPTY)`), { reason: 'duplicate' });
  }

  private fail(job: JobRecord, error: ErrorProto): void {
    job.errorResult = error;
    job.errors = [error];
  }
}

/** An engine or translation failure as BigQuery's error proto. */
function errorOf(err: unknown): ErrorProto {
  const e = err as { message?: string; reason?: string };
  const message = String(e?.message ?? err);
  if (err instanceof UnsupportedSqlError) return { reason: 'invalidQuery', location: 'query', message: `Unsupported by the emulator: ${message}` };
  if (e?.reason) return { reason: e.reason, location: 'query', message };
  if (/Catalog Error|does not exist/i.test(message)) return { reason: 'notFound', location: 'query', message: `Not found: ${message.split('\n')[0]}` };
  if (/Parser Error|Binder Error|syntax error/i.test(message)) return { reason: 'invalidQuery', location: 'query', message: message.split('\n')[0] };
  if (/Constraint Error/i.test(message)) return { reason: 'invalidQuery', location: 'query', message: message.split('\n')[0] };
  if (/INTERRUPT/i.test(message)) return { reason: 'stopped', message: 'Job execution was cancelled: User requested cancellation' };
  return { reason: 'invalidQuery', location: 'query', message: message.split('\n')[0] };
}

/** The job resource as jobs.get, jobs.insert and jobs.list return it. */
export function jobResource(job: JobRecord, minimal = false): Record<string, unknown> {
  const status: Record<string, unknown> = { state: job.state };
  if (job.state === 'DONE' && job.errorResult) {
    status.errorResult = job.errorResult;
    status.errors = job.errors;
  }
  const stats: Record<string, unknown> = { creationTime: String(job.creationTime) };
  if (job.startTime) stats.startTime = String(job.startTime);
  if (job.endTime) stats.endTime = String(job.endTime);
  if (job.state === 'DONE' && job.configuration.query) {
    const r = job.result;
    const bytes = r ? String(r.rows.reduce((n, row) => n + row.reduce((m, v) => m + (v?.length ?? 0), 0), 0)) : '0';
    const query: Record<string, unknown> = { totalBytesProcessed: bytes, totalBytesBilled: bytes, cacheHit: false };
    if (r) {
      query.statementType = r.statementType;
      if (r.affectedRows !== undefined) query.numDmlAffectedRows = String(r.affectedRows);
      if (r.target && r.statementType !== 'SELECT') query.ddlTargetTable = { projectId: job.projectId, datasetId: r.target[0], tableId: r.target[1] };
      if (r.statementType === 'SELECT') query.schema = { fields: r.schema };
    }
    stats.query = query;
    stats.totalBytesProcessed = bytes;
  }
  if (job.state === 'DONE' && job.configuration.load) stats.load = { outputRows: String(job.outputRows ?? 0) };
  const resource: Record<string, unknown> = {
    kind: 'bigquery#job',
    id: `${job.projectId}:${job.location}.${job.jobId}`,
    jobReference: { projectId: job.projectId, jobId: job.jobId, location: job.location },
    status,
    statistics: stats,
    user_email: 'emulator@updraft.local',
  };
  if (!minimal) resource.configuration = job.configuration;
  return resource;
}

/** Rows as `{ f: [{ v }] }`, TIMESTAMP cells in the requested form. */
export function restRows(rows: (string | null)[][], schema: FieldSchema[], int64Timestamps: boolean): { f: { v: string | null }[] }[] {
  const ts = schema.map((f) => f.type === 'TIMESTAMP' && f.mode !== 'REPEATED');
  return rows.map((row) => ({ f: row.map((v, i) => ({ v: v !== null && ts[i] ? timestampCell(v, int64Timestamps) : v })) }));
}

/** getQueryResults / jobs.query rows, a page from `start`. */
export function resultPage(job: JobRecord, start: number, maxResults: number, int64Timestamps: boolean): { schema: { fields: FieldSchema[] }; rows: { f: { v: string | null }[] }[]; totalRows: string; pageToken?: string } {
  const r = job.result;
  const all = r?.rows ?? [];
  const page = all.slice(start, start + maxResults);
  const out: ReturnType<typeof resultPage> = {
    schema: { fields: r?.schema ?? [] },
    rows: restRows(page, r?.schema ?? [], int64Timestamps),
    totalRows: String(r?.statementType === 'SELECT' ? all.length : 0),
  };
  if (start + page.length < all.length) out.pageToken = String(start + page.length);
  return out;
}
