/**
 * `npm run bench -- scheduler --json`: scheduler and worker (32 slots) as separate processes
 * on a fresh PostgreSQL database.
 * - latency: upstream TI end_date → downstream TI start_date over a 200-task chain;
 * - throughput: finished TIs per second for one run of 5,000 independent no-op tasks,
 *   from the run's start_date to its end_date.
 */
import path from 'node:path';
import { openDatabase, DagBag, queries, triggerDagRun, RunState, type Database } from '../core/index.ts';
import { freshDatabase, startService, stopService, percentile, round, log, ROOT } from './harness.ts';

async function runOnce(database: Database, bag: DagBag, dagId: string) {
  const { runPk } = await triggerDagRun(database, bag.get(dagId), {});
  for (;;) {
    const run = await queries.dagRuns.getRunByPk(database.db, runPk);
    if (run && (run.state === RunState.SUCCESS || run.state === RunState.FAILED)) return run;
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function schedulerBench(json: boolean): Promise<Record<string, unknown>> {
  const pg = await freshDatabase('updraft_bench_sched');
  const env = { DATABASE_URL: pg.url, UPDRAFT_DAGS_FOLDER: path.join(ROOT, 'bench/dags') };
  const database = await openDatabase({ databaseUrl: pg.url });
  const services = [];
  try {
    await database.migrate();
    const bag = await DagBag.load(env.UPDRAFT_DAGS_FOLDER);
    await database.db.transaction((tx) => queries.dags.syncDagBag(tx, bag.dags.values(), bag.errors));
    services.push(startService(['scheduler'], env), startService(['worker', '--slots', '32'], env));

    // Warm-up: one small run so both processes have connected and loaded the DAGs.
    log(json, 'warming up…');
    await runOnce(database, bag, 'bench_chain');

    log(json, 'chain of 200…');
    const chainRun = await runOnce(database, bag, 'bench_chain');
    const tis = await queries.dagRuns.runTaskInstances(database.db, chainRun.id);
    const byId = new Map(tis.map((t) => [t.taskId, t]));
    const gaps: number[] = [];
    for (const t of tis) {
      for (const up of bag.get('bench_chain').tasks.get(t.taskId)!.upstreamIds) {
        const u = byId.get(up)!;
        gaps.push(t.startDate!.getTime() - u.endDate!.getTime());
      }
    }
    gaps.sort((a, b) => a - b);

    log(json, 'wide run of 5,000…');
    const wideRun = await runOnce(database, bag, 'bench_wide');
    const wideTis = await queries.dagRuns.runTaskInstances(database.db, wideRun.id);
    const seconds = (wideRun.endDate!.getTime() - wideRun.startDate!.getTime()) / 1000;

    return {
      bench: 'scheduler',
      chain_tasks: tis.length,
      chain_state: chainRun.state,
      latency_p50_ms: round(percentile(gaps, 50)),
      latency_p99_ms: round(percentile(gaps, 99)),
      latency_max_ms: round(gaps[gaps.length - 1]),
      wide_tasks: wideTis.length,
      wide_state: wideRun.state,
      wide_seconds: round(seconds, 3),
      tis_per_s: round(wideTis.length / seconds, 1),
    };
  } finally {
    await Promise.all(services.map(stopService));
    await database.close();
    await pg.drop();
  }
}
