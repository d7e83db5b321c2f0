/**
 * Jobs as BigQuery's REST API shows them: the job resource (status, statistics, configuration),
 * result pages, and engine failures as BigQuery's error proto.
 */
import type { StatementResult } from './engine.ts';
import type { JobRecord } from './jobs.ts';
import { UnsupportedSqlError } from './sql.ts';
import { cellSize, restRows, type Cell, type FieldSchema, type TimestampFormat } from './values.ts';

export interface ErrorProto {
  reason: string;
  message: string;
  location?: string;
  debugInfo?: string;
}

/** An engine or translation failure as BigQuery's error proto. */
export function errorOf(err: unknown): ErrorProto {
  const e = err as { message?: string; reason?: string };
  const message = String(e?.message ?? err);
  const first = message.split('\n')[0];
  if (err instanceof UnsupportedSqlError) return { reason: 'invalidQuery', location: 'query', message: `Unsupported by the emulator: ${message}` };
  if (e?.reason) return { reason: e.reason, location: 'query', message };
  const fn = /(?:Scalar|Aggregate|Table) Function with name "?(\w+)"? does not exist/i.exec(message);
  if (fn) return { reason: 'invalidQuery', location: 'query', message: `Function not found: ${fn[1]} (the emulator does not have it)${/ at \[\d+:\d+\]$/.exec(first)?.[0] ?? ''}` };
  if (/Catalog Error|does not exist/i.test(message)) return { reason: 'notFound', location: 'query', message: `Not found: ${first}` };
  if (/INTERRUPT/i.test(message)) return { reason: 'stopped', message: 'Job execution was cancelled: User requested cancellation' };
  return { reason: 'invalidQuery', location: 'query', message: first };
}

/** `numDmlAffectedRows` and `dmlStats`, as job statistics and jobs.query answers carry them. */
export function dmlFields(r: StatementResult | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (r?.affectedRows !== undefined) out.numDmlAffectedRows = String(r.affectedRows);
  if (r?.dml) out.dmlStats = { insertedRowCount: String(r.dml.inserted), deletedRowCount: String(r.dml.deleted), updatedRowCount: String(r.dml.updated) };
  return out;
}

/** The query statistics BigQuery reports for a finished query job (or a dry run). */
function queryStatistics(job: JobRecord): Record<string, unknown> {
  const r = job.result;
  const bytes = r ? String(r.rows.reduce((n, row) => n + row.reduce((m: number, v) => m + cellSize(v), 0), 0)) : '0';
  const query: Record<string, unknown> = { totalBytesProcessed: bytes, totalBytesBilled: bytes, cacheHit: false };
  if (!r) return query;
  query.statementType = r.statementType;
  Object.assign(query, dmlFields(r));
  if (r.target && r.statementType !== 'SELECT') query.ddlTargetTable = { projectId: job.projectId, datasetId: r.target[0], tableId: r.target[1] };
  if (r.dataset) query.ddlTargetDataset = { projectId: job.projectId, datasetId: r.dataset };
  if (r.statementType === 'SELECT') query.schema = { fields: r.schema };
  return query;
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
    stats.query = queryStatistics(job);
    stats.totalBytesProcessed = (stats.query as { totalBytesProcessed: string }).totalBytesProcessed;
  }
  if (job.state === 'DONE' && job.configuration.load) stats.load = { inputFiles: '1', inputFileBytes: String(job.inputBytes ?? 0), outputRows: String(job.outputRows ?? 0), badRecords: '0' };
  const reference = { projectId: job.projectId, ...(job.jobId ? { jobId: job.jobId } : {}), location: job.location };
  const resource: Record<string, unknown> = {
    kind: 'bigquery#job',
    id: `${job.projectId}:${job.location}.${job.jobId}`,
    jobReference: reference,
    status,
    statistics: stats,
    user_email: 'emulator@updraft.local',
  };
  if (!minimal) resource.configuration = job.configuration;
  return resource;
}

/** getQueryResults / jobs.query rows, a page from `start`. */
export function resultPage(job: JobRecord, start: number, maxResults: number, timestamps: TimestampFormat): { schema: { fields: FieldSchema[] }; rows: { f: { v: Cell }[] }[]; totalRows: string; pageToken?: string } {
  const r = job.result;
  const all = r?.rows ?? [];
  const page = all.slice(start, start + maxResults);
  const out: ReturnType<typeof resultPage> = {
    schema: { fields: r?.schema ?? [] },
    rows: restRows(page, r?.schema ?? [], timestamps),
    totalRows: String(r?.query ? all.length : 0),
  };
  if (start + page.length < all.length) out.pageToken = String(start + page.length);
  return out;
}
