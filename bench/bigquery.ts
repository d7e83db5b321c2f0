/**
 * `npm run bench -- bigquery --json`: 2,000 mapped deferrable insert jobs, each running 10 s in
 * Updraft's BigQuery emulator (its own process, `updraft bigquery-emulator`), on one worker
 * (64 slots) and one triggerer. Twice in one run: waited on by the triggerer's coalesced poller
 * (jobs.list per project and location, jobs.get only for finished jobs), then by polling each
 * job with jobs.get, as Airflow's trigger does.
 * - wall_s: run start → end (ideal: 10 s plus submission).
 * - slot_seconds: worker slots held while the jobs ran, from the running TIs sampled every
 *   100 ms (deferrable TIs hold none while they wait).
 * - get_calls, list_calls: what the emulator served while the jobs waited (the worker's 2,000
 *   jobs.insert are not in it; a resume makes no call: the event carries the job's summary).
 * - requests_per_s: polling requests per second of the run: every jobs.list, and every jobs.get
 *   beyond the one read per finished job that both ways need. total_requests_per_s counts
 *   those reads too.
 * - detect_p50_ms / detect_p99_ms: the job's DONE (the emulator's endTime) → its TI done after
 *   its resume (the TI's end: detection, the event, the resume's claim and its result's write).
 */
import { sql } from 'drizzle-orm';
import { triggerDagRun, type Database } from '../core/index.ts';
import { jobIdFor } from '../providers/bigquery/operators.ts';
import { benchDatabase, percentile, round, log, startService, stopService, startEmulatorProcess } from './harness.ts';

const JOBS = Number(process.env.BENCH_BQ_JOBS ?? 2000);
const JOB_MS = Number(process.env.BENCH_BQ_JOB_MS ?? 10_000);

interface Mode {
  wall: number;
  slotSeconds: number;
  requests: Record<string, number>;
  detect: number[];
}

async function runMode(database: Database, bag: Awaited<ReturnType<typeof benchDatabase>>['bag'], dagId: string, url: string): Promise<Mode> {
  await fetch(`${url}/emulator/reset`, { method: 'POST' });
  const { runPk, runId } = await triggerDagRun(database, bag.get(dagId), {});
  let slotSeconds = 0;
  let last = Date.now();
  for (const deadline = Date.now() + 600_000; ;) {
    await new Promise((r) => setTimeout(r, 100));
    const [row] = await database.rows<{ state: string; running: number }>(sql`
      select r.state, (select count(*)::int from task_instances t where t.run_pk = r.id and t.state = 'running') as running
      from dag_runs r where r.id = ${runPk}`);
    const now = Date.now();
    slotSeconds += row.running * (now - last) / 1000;
    last = now;
    if (row.state === 'success') break;
    if (row.state === 'failed' || now > deadline) throw new Error(`run of ${dagId} ${row.state}`);
  }
  const [run] = await database.rows<{ secs: number }>(sql`select extract(epoch from end_date - start_date)::float8 as secs from dag_runs where id = ${runPk}`);
  const requests = ((await (await fetch(`${url}/emulator/stats`)).json()) as { requests: Record<string, number> }).requests;

  // Each job's end on the server against its TI's resume on the worker.
  const ends = new Map<string, number>();
  for (let pageToken: string | undefined; ;) {
    const q = new URLSearchParams({ projection: 'full', stateFilter: 'done', maxResults: '1000' });
    if (pageToken) q.set('pageToken', pageToken);
    const page = await (await fetch(`${url}/bigquery/v2/projects/bench/jobs?${q}`)).json() as { jobs?: { jobReference: { jobId: string }; statistics: { endTime: string } }[]; nextPageToken?: string };
    for (const j of page.jobs ?? []) ends.set(j.jobReference.jobId, Number(j.statistics.endTime));
    if (!(pageToken = page.nextPageToken)) break;
  }
  const tis = await database.rows<{ map_index: number; resumed: number }>(sql`
    select map_index, extract(epoch from end_date)::float8 * 1000 as resumed from task_instances where run_pk = ${runPk} and task_id = 'job'`);
  const detect: number[] = [];
  for (const t of tis) {
    const jobId = jobIdFor({ dagId, taskId: 'job', runId, mapIndex: t.map_index }, 1, { query: { useLegacySql: false, query: `select ${t.map_index} as n` } });
    const end = ends.get(jobId);
    if (end === undefined) throw new Error(`job ${jobId} of map index ${t.map_index} was not found on the server`);
    detect.push(t.resumed - end);
  }
  return { wall: run.secs, slotSeconds, requests, detect: detect.sort((a, b) => a - b) };
}

export async function bigqueryBench(json: boolean): Promise<Record<string, unknown>> {
  const emulator = await startEmulatorProcess(['--job-duration', '0']);
  const url = emulator.url;
  const conn = { conn_type: 'google_cloud_platform', extra: { project: 'bench', location: 'US', api_endpoint: url } };
  const bench = await benchDatabase('updraft_bench_bq', {
    UPDRAFT_CONN_BENCH_BQ: JSON.stringify(conn), BENCH_BQ_JOBS: String(JOBS), BENCH_BQ_JOB_MS: String(JOB_MS), UPDRAFT_MAX_MAP_LENGTH: String(JOBS + 1000),
  });
  const { env, database, bag } = bench;
  const services = [startService(['scheduler'], env), startService(['worker', '--slots', '64'], env), startService(['triggerer', '--capacity', String(JOBS * 2)], env)];
  try {
    log(json, `${JOBS} deferrable jobs of ${JOB_MS / 1000} s, coalesced polling…`);
    const c = await runMode(database, bag, 'bench_bigquery', url);
    log(json, `coalesced: ${c.wall.toFixed(2)} s; ${JSON.stringify(c.requests)}; detect p50 ${percentile(c.detect, 50).toFixed(0)} / p99 ${percentile(c.detect, 99).toFixed(0)} ms; ${c.slotSeconds.toFixed(1)} slot-s`);
    log(json, 'the same, polling each job…');
    const p = await runMode(database, bag, 'bench_bigquery_per_job', url);
    log(json, `per job: ${p.wall.toFixed(2)} s; ${JSON.stringify(p.requests)}; detect p50 ${percentile(p.detect, 50).toFixed(0)} / p99 ${percentile(p.detect, 99).toFixed(0)} ms`);
    const waitRequests = (m: Mode) => (m.requests['jobs.get'] ?? 0) + (m.requests['jobs.list'] ?? 0);
    return {
      bench: 'bigquery', jobs: JOBS, wall_s: round(c.wall), get_calls: c.requests['jobs.get'] ?? 0, list_calls: c.requests['jobs.list'] ?? 0,
      requests_per_s: round((waitRequests(c) - JOBS) / c.wall, 1), requests_per_s_per_job_polling: round((waitRequests(p) - JOBS) / p.wall, 1),
      total_requests_per_s: round(waitRequests(c) / c.wall, 1), total_requests_per_s_per_job_polling: round(waitRequests(p) / p.wall, 1),
      detect_p50_ms: Math.round(percentile(c.detect, 50)), detect_p99_ms: Math.round(percentile(c.detect, 99)),
      slot_seconds: round(c.slotSeconds, 1), insert_calls: c.requests['jobs.insert'] ?? 0,
      per_job_wall_s: round(p.wall), per_job_get_calls: p.requests['jobs.get'] ?? 0,
      per_job_detect_p50_ms: Math.round(percentile(p.detect, 50)), per_job_detect_p99_ms: Math.round(percentile(p.detect, 99)),
    };
  } finally {
    await Promise.all(services.map(stopService));
    await bench.close();
    emulator.stop();
  }
}
