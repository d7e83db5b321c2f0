/**
 * `npm run bench -- http --json`: the HTTP provider against the wire's limit. A server in its
 * own process (bench/http-server.ts) answers every request after 20 ms. In one run:
 * - bare_undici_s: 10,000 GETs through a plain undici Pool, 200 in flight, from this process
 *   (JSON bodies read and parsed). The physical limit here; ideal 10,000 / 200 × 20 ms = 1 s.
 * - async_task_s: ONE async task making the same 10,000 GETs through HttpHook, 200 in flight
 *   (bench/dags/http.ts), scheduler + worker as processes: the TI's end_date − start_date.
 * - mapped_deferrable_s: 2,000 mapped TIs each deferring one GET to an HttpTrigger, scheduler +
 *   worker (200 slots) + triggerer: run start → end. bare_2000_s is 2,000 bare GETs at 200 in
 *   flight, measured just before, for scale; per_ti_ms = mapped_deferrable_s / 2,000.
 * - paginate_in_trigger_s: one deferrable HttpOperator walking 500 Link-header pages inside
 *   ONE trigger run; ideal 500 × 20 ms = 10 s. TI start → end.
 * - paginate_redefer_s: the same 500 pages with one deferral per page (Airflow's way).
 * ratio_async_vs_bare = async_task_s / bare_undici_s.
 * Every DAG first runs once untimed at a small size, and the bare client warms up with 1,000
 * GETs, so the services are idle and warm when the timed figures are taken.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { sql } from 'drizzle-orm';
import { Pool } from 'undici';
import type { Database } from '../core/index.ts';
import { benchDatabase, runToEnd, startService, stopService, round, log, ROOT, type Run } from './harness.ts';

const GETS = 10_000;
const IN_FLIGHT = 200;
const MAPPED = 2_000;
const PAGES = 500;

async function startServer(): Promise<{ port: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/http-server.ts'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`bench/http-server.ts exited with ${code}`)));
  });
  return {
    port: (JSON.parse(line) as { port: number }).port,
    stop: async () => { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); },
  };
}

async function bareGets(port: number, count: number): Promise<number> {
  const pool = new Pool(`http://127.0.0.1:${port}`);
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < count) {
      const i = next++;
      const res = await pool.request({ path: `/item?i=${i}`, method: 'GET' });
      const body = await res.body.json() as { i: number };
      if (body.i !== i) throw new Error('wrong answer');
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  const s = (performance.now() - started) / 1000;
  await pool.close();
  return s;
}

async function tiSeconds(database: Database, run: Run, taskId: string): Promise<number> {
  const [ti] = await database.rows<{ start_date: Date; end_date: Date }>(sql`
    select start_date, end_date from task_instances where run_pk = ${run.id} and task_id = ${taskId}`);
  return (new Date(ti.end_date).getTime() - new Date(ti.start_date).getTime()) / 1000;
}

const runSeconds = (run: Run) => (run.endDate!.getTime() - run.startDate!.getTime()) / 1000;

export async function httpBench(json: boolean): Promise<Record<string, unknown>> {
  const server = await startServer();
  const bench = await benchDatabase('updraft_bench_http', {
    UPDRAFT_CONN_BENCH_HTTP: JSON.stringify({ conn_type: 'http', host: `http://127.0.0.1:${server.port}` }),
  });
  const { env, database, bag } = bench;
  const services = [startService(['scheduler'], env), startService(['worker', '--slots', String(IN_FLIGHT)], env), startService(['triggerer'], env)];
  const result: Record<string, unknown> = { bench: 'http' };
  try {
    // Warm every service and DAG first, so the bare client is timed beside idle services.
    await runToEnd(database, bag, 'bench_http_async', { count: 500 });
    await runToEnd(database, bag, 'bench_http_mapped', { count: 50 });
    await runToEnd(database, bag, 'bench_http_pages', { pages: 5 });
    await runToEnd(database, bag, 'bench_http_redefer', { pages: 5 });
    await bareGets(server.port, 1_000);

    const bare = await bareGets(server.port, GETS);
    log(json, `bare undici: ${GETS} GETs in ${bare.toFixed(2)} s`);
    const asyncTask = await tiSeconds(database, await runToEnd(database, bag, 'bench_http_async', { count: GETS, inFlight: IN_FLIGHT }), 'many_gets');
    log(json, `async task: ${GETS} GETs in ${asyncTask.toFixed(2)} s`);

    const bare2000 = await bareGets(server.port, MAPPED);
    const mapped = runSeconds(await runToEnd(database, bag, 'bench_http_mapped', { count: MAPPED }));
    log(json, `mapped deferrable: ${MAPPED} TIs in ${mapped.toFixed(2)} s (bare ${bare2000.toFixed(2)} s)`);

    const inTrigger = await tiSeconds(database, await runToEnd(database, bag, 'bench_http_pages', { pages: PAGES }), 'all_pages');
    log(json, `${PAGES} pages in one trigger run: ${inTrigger.toFixed(2)} s`);
    const redefer = await tiSeconds(database, await runToEnd(database, bag, 'bench_http_redefer', { pages: PAGES }, 600_000), 'page_by_page');
    log(json, `${PAGES} pages, one deferral each: ${redefer.toFixed(2)} s`);

    Object.assign(result, {
      bare_undici_s: round(bare), async_task_s: round(asyncTask), ratio_async_vs_bare: round(asyncTask / bare),
      mapped_deferrable_s: round(mapped), bare_2000_s: round(bare2000), per_ti_ms: round((mapped / MAPPED) * 1000),
      paginate_in_trigger_s: round(inTrigger), paginate_redefer_s: round(redefer),
    });
    return result;
  } finally {
    await Promise.all(services.map(stopService));
    await bench.close();
    await server.stop();
  }
}
