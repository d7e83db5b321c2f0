/**
 * Updraft's BigQuery emulator: the REST v2 subset that `@google-cloud/bigquery` uses, over
 * node:http, with jobs that really move PENDING → RUNNING → DONE and SQL that really runs in
 * DuckDB. A development and test tool, not a BigQuery replacement (see README.md here).
 *
 * Routes live under `/bigquery/v2/projects/…` and `/projects/…`; uploads (load jobs) under
 * `/upload/bigquery/v2/projects/…/jobs`. Control routes for tests:
 * - `GET /emulator/stats`: requests served per route (`jobs.get`, `jobs.list`, …) and jobs;
 * - `POST /emulator/faults` `{ route, status?, count?, delayMs? }`: the next `count` calls to
 *   `route` answer `status` (a 5xx or 429) or wait `delayMs` first;
 * - `POST /emulator/reset`: zero the counters and drop pending faults.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { datasetsApi } from './datasets-api.ts';
import { Engine } from './engine.ts';
import { HttpError, timestampFormat, splitMultipart, STATUS_NAMES } from './http.ts';
import { dmlFields, jobResource, resultPage } from './job-resource.ts';
import { DryRunError, JobStore, type JobRecord } from './jobs.ts';
import { fileSize, loadFile, type LoadConfig } from './loads.ts';

export interface EmulatorOptions {
  port?: number;
  host?: string;
  /** The project ids answer for (any project is accepted; this one is the default for listings). */
  project?: string;
  /** Keep the DuckDB database in this directory (default: in memory). */
  dataDir?: string;
  /** How long a job takes at least, unless its `emulator-duration-ms` label says otherwise. */
  jobDurationMs?: number;
  location?: string;
  log?: (line: string) => void;
}

export interface Emulator {
  readonly url: string;
  readonly port: number;
  readonly stats: Map<string, number>;
  close(): Promise<void>;
}

interface Fault {
  status?: number;
  delayMs?: number;
  count: number;
}

export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const engine = await Engine.open(opts.dataDir ? path.join(opts.dataDir, 'bigquery.duckdb') : ':memory:');
  const location = opts.location ?? 'US';
  const jobs = new JobStore(engine, { defaultDurationMs: opts.jobDurationMs ?? 0, location });
  const stats = new Map<string, number>();
  const faults = new Map<string, Fault[]>();
  const uploads = mkdtempSync(path.join(os.tmpdir(), 'updraft-bq-upload-'));
  const datasets = datasetsApi(engine, location);

  const route = async (method: string, parts: string[], url: URL, body: () => Promise<Buffer>, req: IncomingMessage): Promise<[string, unknown]> => {
    const q = url.searchParams;
    if (parts[0] === 'emulator') {
      if (method === 'GET' && parts[1] === 'stats') return ['emulator.stats', { requests: Object.fromEntries(stats), jobs: jobs.size }];
      if (method === 'POST' && parts[1] === 'faults') {
        const f = JSON.parse((await body()).toString() || '{}') as { route: string; status?: number; count?: number; delayMs?: number };
        if (!f.route) throw new HttpError(400, 'a fault needs a route, such as "jobs.get"', 'invalid');
        faults.set(f.route, [...(faults.get(f.route) ?? []), { status: f.status, delayMs: f.delayMs, count: f.count ?? 1 }]);
        return ['emulator.faults', {}];
      }
      if (method === 'POST' && parts[1] === 'reset') {
        stats.clear();
        faults.clear();
        return ['emulator.reset', {}];
      }
      throw new HttpError(404, `no emulator route ${method} /${parts.join('/')}`, 'notFound');
    }
    const upload = parts[0] === 'upload';
    const rest = upload ? parts.slice(3) : parts[0] === 'bigquery' ? parts.slice(2) : parts;
    if (rest[0] !== 'projects' || !rest[1]) throw new HttpError(404, `no route ${method} /${parts.join('/')}`, 'notFound');
    const project = rest[1];
    const [kind, id, sub, subId, tail] = rest.slice(2);

    if (kind === 'jobs') {
      if (upload && method === 'POST' && !id) return ['jobs.insert', await insertUpload(project, req, await body())];
      if (method === 'POST' && !id) {
        const job = await insertJob(project, JSON.parse((await body()).toString() || '{}'));
        return ['jobs.insert', jobResource(job)];
      }
      if (method === 'GET' && !id) return ['jobs.list', listJobs(project, q)];
      const job = jobOr404(project, id);
      if (method === 'GET' && !sub) return ['jobs.get', jobResource(job)];
      if (method === 'POST' && sub === 'cancel') {
        job.cancel();
        return ['jobs.cancel', { kind: 'bigquery#jobCancelResponse', job: jobResource(job) }];
      }
    }
    if (kind === 'queries') {
      if (method === 'POST' && !id) return ['jobs.query', await query(project, JSON.parse((await body()).toString() || '{}'))];
      if (method === 'GET' && id) return ['jobs.getQueryResults', await queryResults(jobOr404(project, id), q)];
    }
    if (kind === 'datasets') return datasets(method, project, id, sub, subId, tail, q, body);
    throw new HttpError(404, `no route ${method} /${parts.join('/')}`, 'notFound');
  };

  function jobOr404(project: string, id: string | undefined): JobRecord {
    const job = id ? jobs.get(project, decodeURIComponent(id)) : undefined;
    if (!job) throw new HttpError(404, `Not found: Job ${project}:${id}`, 'notFound');
    return job;
  }

  async function insertJob(project: string, resource: Record<string, unknown>, loader?: JobRecord['loader']): Promise<JobRecord> {
    const ref = resource.jobReference as { jobId?: string; location?: string } | undefined;
    const config = (resource.configuration ?? {}) as JobRecord['configuration'];
    if (config.dryRun || (config.query as { dryRun?: boolean } | undefined)?.dryRun) {
      try {
        return await jobs.dryRun(project, ref?.location, config);
      } catch (err) {
        if (err instanceof DryRunError) throw new HttpError(400, err.message, 'invalidQuery');
        throw err;
      }
    }
    const job = jobs.insert(project, { jobReference: ref, configuration: config }, loader);
    if (!job) throw new HttpError(409, `Already Exists: Job ${project}:${ref?.location ?? location}.${ref?.jobId}`, 'duplicate');
    return job;
  }

  function listJobs(project: string, q: URLSearchParams): unknown {
    const states = q.getAll('stateFilter').flatMap((s) => s.split(',')).map((s) => s.toUpperCase());
    const minCreation = Number(q.get('minCreationTime') ?? 0);
    const maxResults = Math.min(1000, Number(q.get('maxResults') ?? 1000));
    const start = Number(q.get('pageToken') ?? 0);
    const minimal = q.get('projection') !== 'full';
    const all = jobs.list(project).filter((j) => (!states.length || states.includes(j.state)) && j.creationTime >= minCreation);
    const page = all.slice(start, start + maxResults);
    const out: Record<string, unknown> = {
      kind: 'bigquery#jobList', etag: String(all.length),
      jobs: page.map((j) => {
        const r = jobResource(j, minimal);
        return { ...r, state: j.state, errorResult: j.state === 'DONE' ? j.errorResult : undefined };
      }),
    };
    if (start + page.length < all.length) out.nextPageToken = String(start + page.length);
    return out;
  }

  async function waitDone(job: JobRecord, timeoutMs: number): Promise<boolean> {
    if (job.state === 'DONE') return true;
    let t: NodeJS.Timeout | undefined;
    await Promise.race([job.done, new Promise((r) => { t = setTimeout(r, timeoutMs); })]);
    clearTimeout(t);
    return isDone(job);
  }

  async function queryResults(job: JobRecord, q: URLSearchParams): Promise<unknown> {
    const complete = await waitDone(job, Math.min(Number(q.get('timeoutMs') ?? 10_000), 60_000));
    const base = { kind: 'bigquery#getQueryResultsResponse', etag: job.jobId, jobReference: jobResource(job).jobReference, jobComplete: complete };
    if (!complete) return base;
    if (job.errorResult) throw new HttpError(400, job.errorResult.message, job.errorResult.reason);
    const start = Number(q.get('pageToken') ?? q.get('startIndex') ?? 0);
    const page = resultPage(job, start, Number(q.get('maxResults') ?? 10_000), timestampFormat(q));
    const extra: Record<string, unknown> = { totalBytesProcessed: '0', cacheHit: false, ...dmlFields(job.result) };
    return { ...base, ...page, ...extra };
  }

  async function query(project: string, body: Record<string, unknown>): Promise<unknown> {
    const queryConfig: Record<string, unknown> = { query: body.query, useLegacySql: body.useLegacySql ?? true };
    if (body.defaultDataset) queryConfig.defaultDataset = body.defaultDataset;
    if (body.queryParameters) queryConfig.queryParameters = body.queryParameters;
    const job = await insertJob(project, { jobReference: { location: body.location as string | undefined }, configuration: { query: queryConfig, labels: body.labels, dryRun: body.dryRun } });
    const q = new URLSearchParams();
    q.set('timeoutMs', String(body.timeoutMs ?? 10_000));
    if (body.maxResults) q.set('maxResults', String(body.maxResults));
    // jobs.query carries its format options in the body.
    const format = (body.formatOptions ?? {}) as { useInt64Timestamp?: boolean; timestampOutputFormat?: string };
    if (format.useInt64Timestamp !== undefined) q.set('formatOptions.useInt64Timestamp', String(format.useInt64Timestamp));
    if (format.timestampOutputFormat) q.set('formatOptions.timestampOutputFormat', format.timestampOutputFormat);
    return { ...(await queryResults(job, q) as Record<string, unknown>), kind: 'bigquery#queryResponse' };
  }

  async function insertUpload(project: string, req: IncomingMessage, raw: Buffer): Promise<unknown> {
    const type = req.headers['content-type'] ?? '';
    const boundary = /boundary=("?)([^";]+)\1/.exec(type)?.[2];
    if (!boundary) throw new HttpError(400, 'an upload must be multipart/related with a boundary (uploadType=multipart)', 'invalid');
    const parts = splitMultipart(raw, boundary);
    if (parts.length < 2) throw new HttpError(400, 'a multipart upload needs the job resource and the data', 'invalid');
    const resource = JSON.parse(parts[0].toString()) as { configuration?: { load?: LoadConfig }; jobReference?: { jobId?: string; location?: string } };
    const load = resource.configuration?.load;
    if (!load?.destinationTable) throw new HttpError(400, 'a load job needs configuration.load.destinationTable', 'invalid');
    const file = path.join(uploads, `${Date.now()}-${Math.random().toString(36).slice(2)}`);
    writeFileSync(file, parts[1]);
    // The client sends a file load's location inside configuration.load.
    const jobReference = { ...resource.jobReference, location: resource.jobReference?.location ?? load.location };
    let job: JobRecord;
    try {
      job = await insertJob(project, { ...resource, jobReference }, async (conn) => {
        try {
          job.inputBytes = fileSize(file);
          return await loadFile(engine, conn, file, load);
        } finally {
          rmSync(file, { force: true });
        }
      });
    } catch (err) {
      rmSync(file, { force: true });
      throw err;
    }
    return jobResource(job);
  }

  const routeName = (method: string, parts: string[]): string => {
    // Names a request before it is served, for faults; the handler names it again for stats.
    const upload = parts[0] === 'upload';
    const rest = upload ? parts.slice(3) : parts[0] === 'bigquery' ? parts.slice(2) : parts;
    const [, , kind, id, sub, , tail] = rest;
    if (kind === 'jobs') return !id ? (method === 'GET' ? 'jobs.list' : 'jobs.insert') : sub === 'cancel' ? 'jobs.cancel' : 'jobs.get';
    if (kind === 'queries') return id ? 'jobs.getQueryResults' : 'jobs.query';
    if (kind === 'datasets') return tail === 'data' ? 'tabledata.list' : tail === 'insertAll' ? 'tabledata.insertAll' : sub === 'tables' ? `tables.${method.toLowerCase()}` : `datasets.${method.toLowerCase()}`;
    return parts.join('.');
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const parts = url.pathname.split('/').filter(Boolean);
    const method = req.method ?? 'GET';
    let bodyPromise: Promise<Buffer> | null = null;
    const body = () => (bodyPromise ??= new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
      req.on('error', reject);
    }));
    const send = (status: number, payload: unknown) => {
      const text = payload === undefined ? '' : JSON.stringify(payload);
      res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const name = routeName(method, parts);
    const pending = faults.get(name);
    if (pending?.length) {
      const f = pending[0];
      if (--f.count <= 0) pending.shift();
      if (f.delayMs) await new Promise((r) => setTimeout(r, f.delayMs));
      if (f.status) {
        stats.set(name, (stats.get(name) ?? 0) + 1);
        await body();
        return send(f.status, { error: { code: f.status, message: `injected fault on ${name}`, errors: [{ reason: f.status === 429 ? 'rateLimitExceeded' : 'backendError', message: `injected fault on ${name}`, domain: 'global' }], status: STATUS_NAMES[f.status] ?? 'UNKNOWN' } });
      }
    }
    try {
      const [served, payload] = await route(method, parts, url, body, req);
      stats.set(served, (stats.get(served) ?? 0) + 1);
      send(payload === undefined ? 204 : 200, payload);
    } catch (err) {
      stats.set(name, (stats.get(name) ?? 0) + 1);
      const e = err instanceof HttpError ? err : err instanceof SyntaxError ? new HttpError(400, `the request body is not JSON: ${err.message}`, 'parseError') : new HttpError(500, (err as Error).message, 'backendError');
      if (!(err instanceof HttpError) && !(err instanceof SyntaxError)) opts.log?.(`${method} ${url.pathname}: ${(err as Error).stack}`);
      send(e.code, { error: { code: e.code, message: e.message, errors: [{ reason: e.reason, message: e.message, domain: 'global' }], status: STATUS_NAMES[e.code] ?? 'UNKNOWN' } });
    }
  };

  const server: Server = createServer((req, res) => void handle(req, res));
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`, port, stats,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      engine.close();
      rmSync(uploads, { recursive: true, force: true });
    },
  };
}

/** Read afresh: the job moves on while a request waits. */
const isDone = (job: JobRecord) => job.state === 'DONE';
