/**
 * Peer for the fanout bench: drains no-op jobs with graphile-worker in this one process and
 * prints one JSON line on stdout.
 *
 * Setup, not timed: migrate its own schema (`graphile_worker`) in DATABASE_URL and add
 * BENCH_JOBS (default 10,000) `noop` jobs with one `addJobs` call (a single SQL statement).
 *
 * Drain, timed: `run()` with `concurrency: 24`, the default `pollInterval` (2 s; idle workers
 * are woken by LISTEN/NOTIFY and a worker that just finished a job asks for the next one at
 * once), and no batching or local-queue options. `maxPoolSize: 26` follows graphile-worker's
 * own advice for that concurrency (10 or concurrency + 2, whichever is larger; it warns when
 * the pool is smaller than the concurrency). The logger drops info/debug lines (one per job
 * otherwise) and NO_LOG_SUCCESS=1 is set by the parent for the same reason.
 *
 * - `drain_s`: first `job:start` event → the `job:complete` event of the last job, both on this
 *   process's monotonic clock. `job:complete` fires when the task function has returned; the
 *   row's delete is sent right after (not awaited), the same point at which Updraft stamps a
 *   TI's end_date.
 * - `durable_s`: first `job:start` → the moment a poll (every 10 ms, started only after the last
 *   completion, so it does not load the database during the drain) sees the jobs table empty.
 * - `runner_s`: calling `run()` → the queue seen empty (includes pool and worker start-up).
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import { Logger, makeWorkerUtils, run, type WorkerEvents } from 'graphile-worker';

const url = process.env.DATABASE_URL;
if (!url) throw new Error('DATABASE_URL is required');
const JOBS = Number(process.env.BENCH_JOBS ?? 10_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 24);

const logger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') process.stderr.write(`[graphile-worker] ${level}: ${message}\n`);
});

const utils = await makeWorkerUtils({ connectionString: url, logger });
await utils.migrate();
await utils.addJobs(Array.from({ length: JOBS }, () => ({ identifier: 'noop', payload: {} })));
await utils.release();

const events: WorkerEvents = new EventEmitter();
let firstStart = 0;
let lastComplete = 0;
let completed = 0;
let failed = 0;
let allDone!: () => void;
const done = new Promise<void>((resolve) => { allDone = resolve; });
events.on('job:start', () => { if (!firstStart) firstStart = performance.now(); });
events.on('job:complete', ({ error }) => {
  if (error) failed++;
  if (++completed === JOBS) {
    lastComplete = performance.now();
    allDone();
  }
});

const runStart = performance.now();
const runner = await run({
  connectionString: url,
  concurrency: CONCURRENCY,
  maxPoolSize: Math.max(10, CONCURRENCY + 2),
  noHandleSignals: true,
  logger,
  events,
  taskList: { noop: async () => {} },
});
await done;

const sql = postgres(url, { max: 1, onnotice: () => {} });
let emptyAt = 0;
for (;;) {
  const [{ n }] = await sql<{ n: number }[]>`select count(*)::int as n from graphile_worker._private_jobs`;
  if (n === 0) { emptyAt = performance.now(); break; }
  await new Promise((r) => setTimeout(r, 10));
}
await sql.end();
await runner.stop();

process.stdout.write(`${JSON.stringify({
  peer: 'graphile-worker',
  jobs: completed,
  failed,
  concurrency: CONCURRENCY,
  drain_s: (lastComplete - firstStart) / 1000,
  durable_s: (emptyAt - firstStart) / 1000,
  runner_s: (emptyAt - runStart) / 1000,
})}\n`);
process.exit(0);
