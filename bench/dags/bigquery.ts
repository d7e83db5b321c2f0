/**
 * Benchmark DAGs for the BigQuery bench: BENCH_BQ_JOBS mapped deferrable insert jobs, each
 * running BENCH_BQ_JOB_MS in the emulator (a trivial SELECT), waited on by the triggerer's
 * coalesced poller (bench_bigquery) or by polling each job (bench_bigquery_per_job).
 */
import { dag, task } from 'updraft';
import { bigQueryJobTask } from 'updraft/providers/bigquery';

const JOBS = Number(process.env.BENCH_BQ_JOBS ?? 2000);
const labels = { 'emulator-duration-ms': process.env.BENCH_BQ_JOB_MS ?? '10000' };

const statements = task('statements', () => Array.from({ length: JOBS }, (_, i) => `select ${i} as n`));
const coalesced = bigQueryJobTask('job', { connId: 'bench_bq', labels });
const perJob = bigQueryJobTask('job', { connId: 'bench_bq', labels, pollMode: 'per_job' });

export const bench = dag({ dagId: 'bench_bigquery', schedule: null, maxActiveTasks: 10_000 }, () => {
  coalesced.expand({ sql: statements() });
});

export const benchPerJob = dag({ dagId: 'bench_bigquery_per_job', schedule: null, maxActiveTasks: 10_000 }, () => {
  perJob.expand({ sql: statements() });
});
