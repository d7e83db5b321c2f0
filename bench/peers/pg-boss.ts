/**
 * Peer for the fanout bench: drains no-op jobs with pg-boss in this one process and prints one
 * JSON line on stdout.
 *
 * Setup, not timed: `start()` creates its own schema (`pgboss`) in DATABASE_URL, then
 * `createQueue('noop')` and one `insert()` of BENCH_JOBS (default 10,000) jobs (a single SQL
 * statement).
 *
 * Drain, timed. pg-boss 10.x has no per-worker concurrency option (`teamSize` went away in
 * v10): each `work()` call adds one polling loop that fetches up to `batchSize` jobs, runs the
 * handler on the array, completes them (not awaited), and then waits out the rest of
 * `pollingIntervalSeconds` (minimum 0.5) before fetching again, busy or not. Its documented
 * `notifyWorker(id)` lets a loop skip that wait. Settings, chosen as the fastest way its API
 * offers to keep about 24 jobs in flight (graphile-worker's `concurrency: 24`, Updraft's 24
 * slots):
 *   - ONE `work('noop', { batchSize: 24, pollingIntervalSeconds: 0.5 }, handler)`;
 *   - the handler calls `notifyWorker(ownId)` whenever its fetch came back full, so the loop
 *     goes straight back for more while there is work and polls every 0.5 s only when idle;
 *   - constructor `{ schedule: false, supervise: false }` (no cron or maintenance queries in
 *     the measured window), default pool (`max` 10).
 * Other shapes with 24 in flight, tried on the same machine for 10,000 jobs (drain seconds):
 * 24 loops × batchSize 1 ≈ 41.6, 6 × 4 ≈ 13.6, 3 × 8 ≈ 4.4, 2 × 12 ≈ 7.9, 1 × 24 ≈ 2.9–3.3;
 * more loops contend on its fetch query. Without notifyWorker the 0.5 s minimum poll caps
 * 24 in flight at about 48 jobs/s (240 jobs took 4.5 s). BENCH_PGBOSS_WORKERS,
 * BENCH_PGBOSS_BATCH and BENCH_PGBOSS_NOTIFY=0 override the shape.
 *
 * - `drain_s`: first handler call → return of the handler holding the last job (this process's
 *   monotonic clock); pg-boss sends the completion right after, without awaiting it.
 * - `durable_s`: first handler call → a poll (every 10 ms, started after the last handler
 *   returned) sees every job in state `completed`.
 * - `runner_s`: first `work()` call → that same moment.
 */
import { performance } from 'node:perf_hooks';
import PgBoss from 'pg-boss';

const url = process.env.DATABASE_URL;
if (!url) throw new Error('DATABASE_URL is required');
const JOBS = Number(process.env.BENCH_JOBS ?? 10_000);
const WORKERS = Number(process.env.BENCH_PGBOSS_WORKERS ?? 1);
const BATCH = Number(process.env.BENCH_PGBOSS_BATCH ?? 24);
const NOTIFY = (process.env.BENCH_PGBOSS_NOTIFY ?? '1') === '1';
const QUEUE = 'noop';

const boss = new PgBoss({ connectionString: url, schedule: false, supervise: false });
boss.on('error', (err) => process.stderr.write(`[pg-boss] error: ${err.message}\n`));
await boss.start();
await boss.createQueue(QUEUE);
await boss.insert(Array.from({ length: JOBS }, () => ({ name: QUEUE, data: {} })));

let firstStart = 0;
let lastComplete = 0;
let handled = 0;
let allDone!: () => void;
const done = new Promise<void>((resolve) => { allDone = resolve; });
const options = { batchSize: BATCH, pollingIntervalSeconds: 0.5 };

const runStart = performance.now();
for (let w = 0; w < WORKERS; w++) {
  let id: string | undefined;
  id = await boss.work(QUEUE, options, async (jobs) => {
    if (!firstStart) firstStart = performance.now();
    handled += jobs.length;
    if (handled >= JOBS && !lastComplete) {
      lastComplete = performance.now();
      allDone();
    }
    if (NOTIFY && jobs.length === BATCH && id) boss.notifyWorker(id);
  });
}
await done;

let emptyAt = 0;
const db = boss.getDb();
for (;;) {
  const { rows } = await db.executeSql(`select count(*)::int as n from pgboss.job where name = $1 and state <> 'completed'`, [QUEUE]);
  if (rows[0].n === 0) { emptyAt = performance.now(); break; }
  await new Promise((r) => setTimeout(r, 10));
}
await boss.stop({ graceful: true, wait: true, timeout: 5000 });

process.stdout.write(`${JSON.stringify({
  peer: 'pg-boss',
  jobs: handled,
  workers: WORKERS,
  batch_size: BATCH,
  notify_worker: NOTIFY,
  drain_s: (lastComplete - firstStart) / 1000,
  durable_s: (emptyAt - firstStart) / 1000,
  runner_s: (emptyAt - runStart) / 1000,
})}\n`);
process.exit(0);
