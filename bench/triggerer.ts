/**
 * `npm run bench -- triggerer --json` on a fresh PostgreSQL database, one triggerer as its own
 * process.
 * Part 1, capacity: 100,000 deferred TIs, each on its own timer trigger (`bench.StampedTimer`),
 * moments spread over 60 s after all are claimed. Fire lateness = when the trigger yielded
 * minus its moment (read back from each TI's event payload). Loop lag comes from the
 * triggerer's own histogram over the firing window (p99 reported as its bucket's upper bound).
 * RSS is the triggerer's peak VmRSS while it holds the triggers.
 * Part 2, resume latency, measured on its own: a second fresh database with a new triggerer, a
 * scheduler and a warm worker (64 slots), so part 1's 100k finished rows and the first
 * triggerer's heap do not weigh on it; 2,000 TIs of `bench_resume` defer and fire at ~200/s;
 * each resume method records how long after the event was emitted it started.
 */
import { readFileSync } from 'node:fs';
import { sql } from 'drizzle-orm';
import { schema, RunState, KwargsCodec } from '../core/index.ts';
import { benchDatabase, runToEnd, startService, stopService, percentile, round, log } from './harness.ts';

const TRIGGERS = Number(process.env.BENCH_TRIGGERS ?? 100_000);
const METRICS_PORT = 19_464;

async function scrapeLagBuckets(): Promise<Map<number, number>> {
  const text = await (await fetch(`http://127.0.0.1:${METRICS_PORT}/metrics`)).text();
  const out = new Map<number, number>();
  for (const m of text.matchAll(/^updraft_triggerer_loop_lag_seconds_bucket\{le="([^"]+)"\} (\d+)/gm)) {
    out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  }
  return out;
}

/** p-th percentile of the samples between two cumulative-bucket scrapes, as a bucket upper bound. */
function bucketPercentile(before: Map<number, number>, after: Map<number, number>, p: number): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  for (const b of bounds) if ((after.get(b)! - (before.get(b) ?? 0)) >= total * (p / 100)) return b * 1000;
  return Infinity;
}

function rssMb(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Part 2 on a fresh database and fresh services: ms from event emitted to resume started. */
async function resumeLatencies(json: boolean): Promise<number[]> {
  log(json, 'resume latency: 2,000 TIs at ~200/s…');
  const bench = await benchDatabase('updraft_bench_resume', { UPDRAFT_HEARTBEAT: '2s' });
  const { env, database, bag } = bench;
  const services = [];
  try {
    services.push(startService(['triggerer'], env), startService(['scheduler'], env), startService(['worker', '--slots', '64'], env));
    const run = await runToEnd(database, bag, 'bench_resume', { base: Date.now() + 20_000, spacingMs: 5 });
    return (await database.rows<{ value: number }>(sql`select value from xcom where run_pk = ${run.id} and key = 'return_value'`))
      .map((r) => Number(r.value)).sort((a, b) => a - b);
  } finally {
    await Promise.all(services.map(stopService));
    await bench.close();
  }
}

export async function triggererBench(json: boolean): Promise<Record<string, unknown>> {
  const bench = await benchDatabase('updraft_bench_trig', { UPDRAFT_HEARTBEAT: '2s' });
  const { env, database } = bench;
  const services = [];
  try {

    // Part 1: 100k deferred TIs on a synthetic run, on a queue no worker serves.
    log(json, `inserting ${TRIGGERS} deferred TIs and their triggers…`);
    const codec = new KwargsCodec(null);
    const [run] = await database.db.insert(schema.dagRuns).values({
      dagId: 'bench_capacity', runId: 'capacity', runType: 'manual', state: RunState.RUNNING, logicalDate: new Date(), queuedAt: new Date(), conf: {},
    }).returning({ id: schema.dagRuns.id });
    const claimWindowMs = 40_000 + TRIGGERS * 0.15;
    const fireWindowMs = 60_000;
    const base = Date.now() + claimWindowMs;
    for (let i = 0; i < TRIGGERS; i += 5000) {
      const n = Math.min(5000, TRIGGERS - i);
      const kw = Array.from({ length: n }, (_, k) => ({ moment: base + ((i + k) / TRIGGERS) * fireWindowMs }));
      const trig = await database.db.insert(schema.triggers).values(kw.map((k) => ({
        name: 'bench.StampedTimer', kwargs: codec.seal(k), hash: codec.hash('bench.StampedTimer', k), createdDate: new Date(),
      }))).returning({ id: schema.triggers.id });
      await database.db.insert(schema.taskInstances).values(trig.map((t, k) => ({
        runPk: run.id, dagId: 'bench_capacity', runId: 'capacity', taskId: `t${i + k}`, state: 'deferred', tryNumber: 1,
        operator: 'bench', queue: 'bench_capacity', triggerId: t.id, nextMethod: 'executeComplete', nextKwargs: { kwargs: {} }, startDate: new Date(),
      })));
    }

    const triggerer = startService(['triggerer', '--capacity', String(TRIGGERS + 10_000), '--metrics-port', String(METRICS_PORT)], env);
    services.push(triggerer);
    log(json, 'waiting for the triggerer to claim them all…');
    const claimStart = Date.now();
    let peakRss = 0;
    for (;;) {
      const [{ n }] = await database.rows<{ n: number }>(sql`select count(*)::int as n from triggers where triggerer_id is not null`);
      peakRss = Math.max(peakRss, rssMb(triggerer.pid!));
      if (n >= TRIGGERS) break;
      if (Date.now() > base - 2000) throw new Error(`only ${n} of ${TRIGGERS} triggers claimed before the first moment; raise the claim window`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const claimSeconds = (Date.now() - claimStart) / 1000;
    while (Date.now() < base - 1000) {
      peakRss = Math.max(peakRss, rssMb(triggerer.pid!));
      await new Promise((r) => setTimeout(r, 250));
    }
    const lagBefore = await scrapeLagBuckets();
    log(json, 'firing…');
    for (;;) {
      peakRss = Math.max(peakRss, rssMb(triggerer.pid!));
      const [{ n }] = await database.rows<{ n: number }>(sql`select count(*)::int as n from task_instances where run_pk = ${run.id} and state = 'deferred'`);
      if (n === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const lagAfter = await scrapeLagBuckets();
    const lateness = (await database.rows<{ late: number }>(sql`
      select ((next_kwargs->'event'->>'firedAt')::float8 - (next_kwargs->'event'->>'moment')::float8) as late
      from task_instances where run_pk = ${run.id}`)).map((r) => Number(r.late)).sort((a, b) => a - b);

    await stopService(triggerer);
    const resumes = await resumeLatencies(json);

    return {
      bench: 'triggerer',
      triggers: lateness.length,
      fire_lateness_p50_ms: round(percentile(lateness, 50)),
      fire_lateness_p99_ms: round(percentile(lateness, 99)),
      loop_lag_p99_ms: bucketPercentile(lagBefore, lagAfter, 99),
      rss_mb: round(peakRss, 0),
      claim_all_s: round(claimSeconds, 1),
      resume_latency_p50_ms: round(percentile(resumes, 50)),
      resume_latency_p99_ms: round(percentile(resumes, 99)),
      resumes: resumes.length,
    };
  } finally {
    await Promise.all(services.map(stopService));
    await bench.close();
  }
}
