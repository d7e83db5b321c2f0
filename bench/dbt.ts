/**
 * `npm run bench -- dbt --json`: a generated dbt project of 500 table models in 10 layers (each
 * model refs two of the layer above) run on Updraft's BigQuery emulator (its own process) with
 * every job taking 1 s; one scheduler, one worker (16 slots), one triggerer, on PostgreSQL.
 * - parse_ms: loading the project (what a DAG file's import pays), in a fresh process, median of 3;
 * - compile_ms: the setup task's own duration (rendering every model, reading BigQuery);
 * - wall_s: run start → end; ideal_s: 10 layers × 1 s plus the setup task;
 * - peak_slots: the most TIs executing at once on the worker (its own count, printed when it
 *   stops); peak_claimed: the most TIs in state running, sampled every 50 ms, which also counts
 *   TIs the worker has claimed ahead (prefetch) that hold no slot yet.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { triggerDagRun, type Database } from '../core/index.ts';
import { benchDatabase, log, percentile, round, startService, stopService, ROOT, startEmulatorProcess } from './harness.ts';
import { writeBenchProject } from './dbt-project.ts';

const LAYERS = Number(process.env.BENCH_DBT_LAYERS ?? 10);
const WIDTH = Number(process.env.BENCH_DBT_WIDTH ?? 50);
const JOB_MS = Number(process.env.BENCH_DBT_JOB_MS ?? 1000);

export async function dbtBench(json: boolean): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'updraft-dbt-bench-'));
  const models = writeBenchProject(dir, LAYERS, WIDTH);
  const parses: number[] = [];
  for (let i = 0; i < 3; i++) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'bench/dbt-parse.ts', dir], { cwd: ROOT, encoding: 'utf8' });
    parses.push((JSON.parse(out) as { parse_ms: number }).parse_ms);
  }
  const parseMs = parses.sort((a, b) => a - b)[1];
  log(json, `${models} models; parse ${parses.map((p) => p.toFixed(0)).join(' / ')} ms`);

  const emulator = await startEmulatorProcess(['--job-duration', String(JOB_MS), '--project', 'bench']);
  const url = emulator.url;
  const conn = { conn_type: 'google_cloud_platform', extra: { project: 'bench', location: 'US', api_endpoint: url } };
  process.env.BENCH_DBT_DIR = dir; // this process loads the bench DAGs too
  const bench = await benchDatabase('updraft_bench_dbt', { UPDRAFT_CONN_BENCH_BQ: JSON.stringify(conn), BENCH_DBT_DIR: dir });
  const { env, database, bag } = bench;
  const worker = startService(['worker', '--slots', '16', ...(process.env.BENCH_DBT_PREFETCH ? ['--prefetch', process.env.BENCH_DBT_PREFETCH] : [])], env);
  let workerLog = '';
  worker.stderr?.on('data', (d: Buffer) => { workerLog += d.toString(); });
  const services = [startService(['scheduler'], env), worker, startService(['triggerer'], env)];
  try {
    const { runPk } = await triggerDagRun(database, bag.get('bench_dbt'), {});
    let claimed = 0;
    for (const deadline = Date.now() + 900_000; ;) {
      await new Promise((r) => setTimeout(r, 50));
      const [row] = await database.rows<{ state: string; running: number }>(sql`
        select r.state,
          (select count(*)::int from task_instances t where t.run_pk = r.id and t.state = 'running' and t.task_id <> 'compile') as running
        from dag_runs r where r.id = ${runPk}`);
      claimed = Math.max(claimed, row.running);
      if (row.state === 'success') break;
      if (row.state === 'failed' || Date.now() > deadline) throw new Error(`the dbt run ${row.state}`);
    }
    const [t] = await database.rows<{ wall: number; compile: number }>(sql`
      select extract(epoch from r.end_date - r.start_date)::float8 as wall,
        (select extract(epoch from t.end_date - t.start_date)::float8 * 1000 from task_instances t where t.run_pk = r.id and t.task_id = 'compile') as compile
      from dag_runs r where r.id = ${runPk}`);
    const ideal = LAYERS * JOB_MS / 1000 + t.compile / 1000;
    const lags = await lagsOf(database, runPk, url);
    // The worker's own count of TIs executing at once, printed when it stops.
    await stopService(worker);
    const peak = Number(/at most (\d+) of \d+ slots in use/.exec(workerLog)?.[1] ?? NaN);
    log(json, `wall ${t.wall.toFixed(2)} s (ideal ${ideal.toFixed(2)}), compile ${t.compile.toFixed(0)} ms, peak ${peak} slots in use (${claimed} TIs claimed)`);
    return {
      bench: 'dbt', models, parse_ms: round(parseMs, 1), compile_ms: Math.round(t.compile), wall_s: round(t.wall), ideal_s: round(ideal),
      ratio_wall_vs_ideal: round(t.wall / ideal), peak_slots: peak, peak_claimed: claimed,
      submit_lag_p50_ms: Math.round(percentile(lags.submit, 50)), submit_lag_p99_ms: Math.round(percentile(lags.submit, 99)),
      resume_lag_p50_ms: Math.round(percentile(lags.resume, 50)), resume_lag_p99_ms: Math.round(percentile(lags.resume, 99)),
    };
  } finally {
    await Promise.all(services.map(stopService));
    await bench.close();
    emulator.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Where the time beyond the jobs goes, per model: submit lag (its last upstream TI done → its
 * job created on the server) and resume lag (its job done → its TI done, after the resume).
 */
async function lagsOf(database: Database, runPk: number, url: string): Promise<{ submit: number[]; resume: number[] }> {
  const jobs = new Map<string, { created: number; ended: number }>();
  for (let pageToken: string | undefined; ;) {
    const q = new URLSearchParams({ projection: 'full', maxResults: '1000' });
    if (pageToken) q.set('pageToken', pageToken);
    const page = await (await fetch(`${url}/bigquery/v2/projects/bench/jobs?${q}`)).json() as { jobs?: { configuration: { labels?: Record<string, string> }; statistics: { creationTime: string; endTime?: string } }[]; nextPageToken?: string };
    for (const j of page.jobs ?? []) {
      const model = j.configuration.labels?.['dbt-model'];
      if (model) jobs.set(model, { created: Number(j.statistics.creationTime), ended: Number(j.statistics.endTime) });
    }
    if (!(pageToken = page.nextPageToken)) break;
  }
  const tis = await database.rows<{ task_id: string; ended: number }>(sql`
    select task_id, extract(epoch from end_date)::float8 * 1000 as ended from task_instances where run_pk = ${runPk}`);
  const ended = new Map(tis.map((t) => [t.task_id.split('.').at(-1)!, t.ended]));
  const submit: number[] = [];
  const resume: number[] = [];
  for (const [model, job] of jobs) {
    const [, layer, i] = model.split('_').map(Number);
    const ups = layer === 0 ? [ended.get('compile')!] : [ended.get(`m_${layer - 1}_${i}`)!, ended.get(`m_${layer - 1}_${(i + 1) % WIDTH}`)!];
    submit.push(job.created - Math.max(...ups));
    resume.push(ended.get(model)! - job.ended);
  }
  return { submit: submit.sort((a, b) => a - b), resume: resume.sort((a, b) => a - b) };
}
