/**
 * `npm run bench -- scheduler --json`: scheduler and worker (32 slots) as separate processes
 * on a fresh PostgreSQL database.
 * - latency: upstream TI end → downstream TI start over a 200-task chain, as the tasks
 *   themselves saw it (each returns Date.now() when it starts; a no-op ends at once);
 * - throughput: finished TIs per second for one run of 5,000 independent no-op tasks,
 *   from the run's start_date to its end_date;
 * - import: loading bench/dags-large (one DAG of 10,000 tasks) into a fresh DagBag, DAG file
 *   transpile and import included, in this process before anything else warms it.
 */
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { DagBag, queries } from '../core/index.ts';
import { ROOT, benchDatabase, runToEnd, startService, stopService, percentile, round, log } from './harness.ts';

export async function schedulerBench(json: boolean): Promise<Record<string, unknown>> {
  const importStarted = performance.now();
  const large = await DagBag.load(path.join(ROOT, 'bench/dags-large'));
  const importMs = performance.now() - importStarted;
  const importedTasks = large.get('bench_import_10k').tasks.size;
  const bench = await benchDatabase('updraft_bench_sched');
  const { env, database, bag } = bench;
  const services = [];
  try {
    services.push(startService(['scheduler'], env), startService(['worker', '--slots', '32'], env));

    // Warm-up: one small run so both processes have connected and loaded the DAGs.
    log(json, 'warming up…');
    await runToEnd(database, bag, 'bench_chain');

    log(json, 'chain of 200…');
    const chainRun = await runToEnd(database, bag, 'bench_chain');
    const tis = await queries.dagRuns.runTaskInstances(database.db, chainRun.id);
    // Each no-op returns Date.now() as it starts; it ends the same millisecond, so the gap
    // between consecutive values is upstream end → downstream start, on the worker's clock.
    const startedAt = new Map<string, number>();
    for (const r of await database.rows<{ task_id: string; value: number }>(sql`select task_id, value from xcom where run_pk = ${chainRun.id} and key = 'return_value'`)) {
      startedAt.set(r.task_id, Number(r.value));
    }
    const gaps: number[] = [];
    for (const t of tis) {
      for (const up of bag.get('bench_chain').tasks.get(t.taskId)!.upstreamIds) gaps.push(startedAt.get(t.taskId)! - startedAt.get(up)!);
    }
    gaps.sort((a, b) => a - b);

    log(json, 'wide run of 5,000…');
    const wideRun = await runToEnd(database, bag, 'bench_wide');
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
      import_10k_tasks: importedTasks,
      import_10k_ms: round(importMs, 1),
    };
  } finally {
    await Promise.all(services.map(stopService));
    await bench.close();
  }
}
