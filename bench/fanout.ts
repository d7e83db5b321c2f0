/**
 * `npm run bench -- fanout --json`: fan-out on a fresh PostgreSQL database, Updraft's scheduler
 * and worker as separate processes, then two PostgreSQL job queues as peers in their own schemas
 * of the same database (Updraft's services are stopped by then).
 *
 * - seed000_expand_s / seed000_iterate_s: seed 000's shape at 300 items, each a 3 s async wait,
 *   then a fan-in (bench/dags/seed000-*.ts); scheduler + ONE worker with 320 slots. Run
 *   start_date → end_date. Ideal 3 s.
 * - iterate10k_s: 10,000 items × 1 s async wait in ONE iterate TI at concurrency 10,000
 *   (bench/dags/iterate10k.ts), same services. Reported: that TI's end_date − start_date (its
 *   start_date is when the worker claimed it, so list resolution is included; the run's
 *   duration, which adds `create_items` and the hand-offs, goes to the details line). Ideal 1 s.
 * - mapped_noop_tis_per_s: a no-op async task expanded over 10,000 items (bench/dags/
 *   mapped-noop.ts; 10,000 is exactly the default UPDRAFT_MAX_MAP_LENGTH, which allows it),
 *   scheduler + ONE worker with 24 slots. 10,000 / (latest end_date − earliest start_date over
 *   the mapped TIs): start_date is stamped when a worker claims the TI, end_date when its
 *   function returns (before its result is written), so the window covers claiming and
 *   running every TI and writing all results but the last batch's, not the list task or the
 *   expansion before it. The run's duration goes to the details line.
 * - mapped_fanin_tis_per_s (details line only, not part of the result line): the same with a
 *   fan-in downstream (bench/dags/mapped-fanin.ts: each TI returns its item, `collect` receives
 *   all 10,000), so every batch also decides the waiting downstream task.
 * - graphile_worker_jobs_per_s / pg_boss_jobs_per_s: 10,000 no-op jobs added up front (not
 *   timed) and drained by ONE child process (bench/peers/*.ts, which document their exact
 *   options); jobs/s = 10,000 / (first job start → last job's handler returned), the same two
 *   points Updraft's TI timestamps mark. The peers also report when their queue was seen empty
 *   in the database (details line).
 * - ratio_vs_graphile = mapped_noop_tis_per_s / graphile_worker_jobs_per_s.
 *
 * Each Updraft worker first finishes a 50-item run of bench_mapped_noop, untimed (connections,
 * DAG import, JIT).
 *
 * The database's default_pool is raised to 20,000 slots first (as `updraft pools set
 * default_pool 20000` would): its seeded 128 slots would otherwise cap the 300-wide fan-out.
 * Each measurement is independent: on failure it reports null and says why on stderr. A
 * details line (extra timings) also goes to stderr; the result line holds only the keys above.
 */
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { sql } from 'drizzle-orm';
import { queries, type Database } from '../core/index.ts';
import { benchDatabase, runToEnd, startService, stopService, round, log, ROOT } from './harness.ts';

const JOBS = 10_000;

const seconds = (from: Date | null, to: Date | null) => {
  if (!from || !to) throw new Error('missing start_date or end_date');
  return (to.getTime() - from.getTime()) / 1000;
};

/** Earliest start_date and latest end_date of a task's TIs in a run (mapped ones: map_index ≥ 0). */
async function tiWindow(database: Database, runPk: number, taskId: string, mapped: boolean) {
  const [w] = await database.rows<{ n: number; first_start: Date | null; last_end: Date | null }>(sql`
    select count(*)::int as n, min(start_date) as first_start, max(end_date) as last_end from task_instances
    where run_pk = ${runPk} and task_id = ${taskId} and state = 'success' and (${!mapped}::boolean or map_index >= 0)`);
  return { n: w.n, firstStart: w.first_start && new Date(w.first_start), lastEnd: w.last_end && new Date(w.last_end) };
}

/** Run a peer script in its own process; its last stdout line is its JSON result. */
async function runPeer(script: string, env: Record<string, string>, timeoutMs: number): Promise<Record<string, number>> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => { out += d; });
  child.stderr?.on('data', (d: Buffer) => { err += d; if (process.env.BENCH_VERBOSE) process.stderr.write(d); });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  const last = out.trim().split('\n').pop() ?? '';
  if (code !== 0 || !last.startsWith('{')) {
    throw new Error(`${path.basename(script)} exited with ${code ?? 'a signal (timeout?)'}: ${err.trim().split('\n').slice(-5).join(' | ')}`);
  }
  return JSON.parse(last) as Record<string, number>;
}

export async function fanoutBench(json: boolean): Promise<Record<string, unknown>> {
  const bench = await benchDatabase('updraft_bench_fanout');
  const { env, database, bag } = bench;
  const services: ChildProcess[] = [];
  const result: Record<string, unknown> = {
    bench: 'fanout', seed000_expand_s: null, seed000_iterate_s: null, iterate10k_s: null, mapped_noop_tis_per_s: null,
    graphile_worker_jobs_per_s: null, pg_boss_jobs_per_s: null, ratio_vs_graphile: null,
  };
  const details: Record<string, unknown> = {};
  const measure = async (name: string, fn: () => Promise<void>) => {
    log(json, `${name}…`);
    try {
      await fn();
    } catch (err) {
      process.stderr.write(`fanout: ${name} failed, reporting null: ${(err as Error).message}\n`);
    }
  };

  try {
    await queries.pools.setPool(database.db, 'default_pool', 20_000, false, null);

    // Part 1: scheduler + one worker with 320 slots.
    services.push(startService(['scheduler'], env));
    let worker = startService(['worker', '--slots', '320'], env);
    services.push(worker);
    log(json, 'warming up…');
    await runToEnd(database, bag, 'bench_mapped_noop', { count: 50 }, 60_000);

    for (const [key, dagId] of [['seed000_expand_s', 'bench_seed000_expand'], ['seed000_iterate_s', 'bench_seed000_iterate']] as const) {
      await measure(key, async () => {
        const run = await runToEnd(database, bag, dagId, {}, 30_000);
        const items = await tiWindow(database, run.id, 'process_item', false);
        const collected = await queries.xcom.readXCom(database.db, run.id, 'collect', 'return_value', -1);
        if (collected !== 300) throw new Error(`collect saw ${String(collected)} results, expected 300`);
        result[key] = round(seconds(run.startDate, run.endDate), 3);
        details[`${key}_process_item_tis`] = items.n;
        details[`${key}_process_item_window_s`] = round(seconds(items.firstStart, items.lastEnd), 3);
      });
    }

    await measure('iterate10k_s', async () => {
      const run = await runToEnd(database, bag, 'bench_iterate10k', {}, 30_000);
      const ti = await tiWindow(database, run.id, 'wait_1s', false);
      if (ti.n !== 1) throw new Error(`expected one successful wait_1s TI, found ${ti.n}`);
      const results = await queries.xcom.readXCom(database.db, run.id, 'wait_1s', 'return_value', -1);
      if (!Array.isArray(results) || results.length !== 10_000) throw new Error(`wait_1s returned ${Array.isArray(results) ? results.length : typeof results} results, expected 10,000`);
      result.iterate10k_s = round(seconds(ti.firstStart, ti.lastEnd), 3);
      details.iterate10k_run_s = round(seconds(run.startDate, run.endDate), 3);
    });

    // Part 2: the same scheduler, one worker with 24 slots.
    await stopService(worker);
    worker = startService(['worker', '--slots', '24'], env);
    services.push(worker);
    await measure('mapped_noop_tis_per_s', async () => {
      await runToEnd(database, bag, 'bench_mapped_noop', { count: 50 }, 60_000);
      const run = await runToEnd(database, bag, 'bench_mapped_noop', { count: JOBS }, 120_000);
      const w = await tiWindow(database, run.id, 'noop', true);
      if (w.n !== JOBS) throw new Error(`expected ${JOBS} successful mapped TIs, found ${w.n}`);
      const list = await tiWindow(database, run.id, 'make_list', false);
      const window = seconds(w.firstStart, w.lastEnd);
      result.mapped_noop_tis_per_s = round(JOBS / window, 1);
      details.mapped_noop_window_s = round(window, 3);
      details.mapped_noop_run_s = round(seconds(run.startDate, run.endDate), 3);
      details.mapped_noop_list_end_to_first_start_ms = round(seconds(list.lastEnd, w.firstStart) * 1000, 1);
    });
    await measure('mapped_fanin_tis_per_s (details only)', async () => {
      await runToEnd(database, bag, 'bench_mapped_fanin', { count: 50 }, 60_000);
      const run = await runToEnd(database, bag, 'bench_mapped_fanin', { count: JOBS }, 120_000);
      const w = await tiWindow(database, run.id, 'echo', true);
      if (w.n !== JOBS) throw new Error(`expected ${JOBS} successful mapped TIs, found ${w.n}`);
      const collected = await queries.xcom.readXCom(database.db, run.id, 'collect', 'return_value', -1);
      if (collected !== JOBS) throw new Error(`collect saw ${String(collected)} results, expected ${JOBS}`);
      details.mapped_fanin_tis_per_s = round(JOBS / seconds(w.firstStart, w.lastEnd), 1);
      details.mapped_fanin_run_s = round(seconds(run.startDate, run.endDate), 3);
    });
    await Promise.all(services.splice(0).map(stopService));

    // Part 3: the peers, each in its own process and schema, nothing else running.
    const peerEnv = { DATABASE_URL: bench.url, BENCH_JOBS: String(JOBS), NO_LOG_SUCCESS: '1' };
    await measure('graphile_worker_jobs_per_s', async () => {
      const r = await runPeer('bench/peers/graphile-worker.ts', peerEnv, 90_000);
      if (r.jobs !== JOBS || r.failed) throw new Error(`graphile-worker ran ${r.jobs} jobs, ${r.failed} failed`);
      result.graphile_worker_jobs_per_s = round(JOBS / r.drain_s, 1);
      details.graphile_worker_drain_s = round(r.drain_s, 3);
      details.graphile_worker_queue_empty_s = round(r.durable_s, 3);
    });
    await measure('pg_boss_jobs_per_s', async () => {
      const r = await runPeer('bench/peers/pg-boss.ts', peerEnv, 90_000);
      if (r.jobs !== JOBS) throw new Error(`pg-boss ran ${r.jobs} jobs`);
      result.pg_boss_jobs_per_s = round(JOBS / r.drain_s, 1);
      details.pg_boss_drain_s = round(r.drain_s, 3);
      details.pg_boss_queue_empty_s = round(r.durable_s, 3);
    });
    if (typeof result.mapped_noop_tis_per_s === 'number' && typeof result.graphile_worker_jobs_per_s === 'number') {
      result.ratio_vs_graphile = round(result.mapped_noop_tis_per_s / result.graphile_worker_jobs_per_s, 3);
    }
    process.stderr.write(`fanout details: ${JSON.stringify(details)}\n`);
    return result;
  } finally {
    await Promise.all(services.map(stopService));
    await bench.close();
  }
}
