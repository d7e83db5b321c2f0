/**
 * `npm run bench -- dbclean --json`: `db clean` on a fresh PostgreSQL database holding 1,000,000
 * TIs of finished runs (each with a history row, a log line and an XCom), filled with
 * generate_series, while a scheduler-like workload runs beside it: each of its transactions
 * queues a run, creates its 10 TIs, finishes them with a log line each and closes the run, as
 * the scheduler and a worker would. Reports rows deleted per second and the longest transaction
 * the workload saw during the clean (its stall), beside the same figure before the clean.
 */
import { sql } from 'drizzle-orm';
import { queries } from '../core/index.ts';
import { benchDatabase, percentile, round, log } from './harness.ts';

const RUNS = 2000;
const TIS_PER_RUN = 500;

export async function dbcleanBench(json: boolean): Promise<Record<string, unknown>> {
  const bench = await benchDatabase('updraft_bench_clean');
  const { database } = bench;
  try {
    log(json, `filling ${RUNS * TIS_PER_RUN} TIs…`);
    const fillStarted = Date.now();
    const old = "now() - interval '30 days'";
    await database.db.execute(sql.raw(`insert into dag_runs (dag_id, run_id, run_type, state, logical_date, queued_at, start_date, end_date)
      select 'old_dag', 'scheduled__' || g, 'scheduled', 'success', ${old} - g * interval '1 minute', ${old}, ${old}, ${old} from generate_series(1, ${RUNS}) g`));
    await database.db.execute(sql.raw(`insert into task_instances (run_pk, dag_id, run_id, task_id, state, try_number, operator, start_date, end_date, duration)
      select r.id, 'old_dag', r.run_id, 't' || g, 'success', 1, '@task', ${old}, ${old}, 0.01 from dag_runs r, generate_series(1, ${TIS_PER_RUN}) g`));
    await database.db.execute(sql.raw(`insert into task_instance_history (ti_id, dag_id, run_id, task_id, map_index, try_number, state)
      select id, dag_id, run_id, task_id, -1, 1, 'success' from task_instances`));
    await database.db.execute(sql.raw(`insert into logs (ti_id, try_number, ts, level, message) select id, 1, ${old}, 'info', 'processed 100 rows' from task_instances`));
    await database.db.execute(sql.raw(`insert into xcom (run_pk, task_id, key, value, created_at) select run_pk, task_id, 'return_value', '42'::jsonb, ${old} from task_instances`));
    await database.db.execute(sql.raw('vacuum analyze'));
    const fillSeconds = (Date.now() - fillStarted) / 1000;
    const sizeBefore = await dbSize(database);

    const workload = startWorkload(database);
    log(json, 'baseline workload for 5 s…');
    await new Promise((r) => setTimeout(r, 5000));
    const baseline = workload.take();

    log(json, 'cleaning…');
    const started = Date.now();
    // The longest gap between two batch ends: one batch's statement, plus the reads between.
    let lastBatch = performance.now();
    let maxBatchMs = 0;
    const deleted = await queries.cleanup.cleanBefore(database.db, {
      before: new Date(Date.now() - 86_400_000),
      onBatch: () => {
        maxBatchMs = Math.max(maxBatchMs, performance.now() - lastBatch);
        lastBatch = performance.now();
      },
    });
    const seconds = (Date.now() - started) / 1000;
    const during = workload.take();
    await workload.stop();
    const total = Object.values(deleted).reduce((a, b) => a + b, 0);
    await database.db.execute(sql.raw('vacuum analyze'));
    return {
      bench: 'dbclean',
      fill_seconds: round(fillSeconds, 1),
      tis: RUNS * TIS_PER_RUN,
      deleted,
      rows_deleted: total,
      clean_seconds: round(seconds, 1),
      rows_per_s: Math.round(total / seconds),
      batch_rows: 5000,
      max_batch_ms: round(maxBatchMs),
      workload_txns_baseline: baseline.length,
      workload_p50_ms_baseline: round(percentile(baseline, 50)),
      workload_max_ms_baseline: round(baseline[baseline.length - 1] ?? NaN),
      workload_txns_during: during.length,
      workload_p50_ms_during: round(percentile(during, 50)),
      workload_p99_ms_during: round(percentile(during, 99)),
      workload_max_stall_ms: round(during[during.length - 1] ?? NaN),
      db_mb_before: sizeBefore,
      db_mb_after_vacuum: await dbSize(database),
    };
  } finally {
    await bench.close();
  }
}

async function dbSize(database: Parameters<typeof startWorkload>[0]): Promise<number> {
  const [r] = await database.rows<{ n: string }>(sql`select pg_database_size(current_database())::text as n`);
  return Math.round(Number(r.n) / 1e6);
}

/** Scheduler-like transactions back to back; take() returns their durations (sorted) since the last take. */
function startWorkload(database: import('../core/index.ts').Database) {
  let durations: number[] = [];
  let stopped = false;
  let i = 0;
  const loop = (async () => {
    while (!stopped) {
      const t0 = performance.now();
      await database.db.transaction(async (tx) => {
        await tx.execute(sql`select dag_id from dags for update skip locked`);
        const [run] = await database.rows<{ id: number }>(sql`insert into dag_runs (dag_id, run_id, run_type, state, logical_date, queued_at, start_date)
          values ('live_dag', ${`manual__${i++}`}, 'manual', 'running', now() + ${i} * interval '1 ms', now(), now()) returning id`, tx);
        await tx.execute(sql`insert into task_instances (run_pk, dag_id, run_id, task_id, state, operator, scheduled_at)
          select ${run.id}, 'live_dag', 'r', 't' || g, 'scheduled', '@task', now() from generate_series(1, 10) g`);
        await tx.execute(sql`update task_instances set state = 'success', try_number = 1, start_date = now(), end_date = now() where run_pk = ${run.id}`);
        await tx.execute(sql`insert into logs (ti_id, try_number, ts, level, message) select id, 1, now(), 'info', 'done' from task_instances where run_pk = ${run.id}`);
        await tx.execute(sql`update dag_runs set state = 'success', end_date = now() where id = ${run.id}`);
      });
      durations.push(performance.now() - t0);
    }
  })();
  return {
    take() {
      const out = durations.sort((a, b) => a - b);
      durations = [];
      return out;
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}
