/**
 * Network partitions, made with a TCP proxy between one process and PostgreSQL that stops
 * forwarding while every socket stays open (a blackhole, not a reset). Every other process
 * talks to the database directly. Heartbeats are 0.5 s, the health and zombie thresholds 3 s,
 * and PostgreSQL ends a session idle inside a transaction after 3 s, so the cut-off process
 * cannot hold row locks the others need.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { openDatabase } from '../../core/index.ts';
import { createTestDatabase, pgAvailable, waitFor, type TestPg } from '../helpers/pg.ts';
import { Procs, type Proc } from '../helpers/int-procs.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';
import { READY, auditProblems, auditRun, baselineMs, faultEnv, lostAndTwice, recordFault, type FaultSizes } from '../helpers/faults.ts';

const TIMING = {
  UPDRAFT_HEARTBEAT: '500ms', UPDRAFT_ZOMBIE_THRESHOLD: '3s', UPDRAFT_TRIGGERER_HEALTH_THRESHOLD: '3s', UPDRAFT_IDLE_TRANSACTION_TIMEOUT: '3s',
};

describe.skipIf(!pgAvailable)('fault: network partitions', () => {
  let pg: TestPg;
  let proxy: TcpProxy;
  let procs: Procs;
  let sql: postgres.Sql;

  beforeEach(async ({ onTestFailed }) => {
    pg = await createTestDatabase('updraft_partition');
    const database = await openDatabase({ databaseUrl: pg.url });
    await database.migrate();
    await database.close();
    const u = new URL(pg.url);
    proxy = await TcpProxy.start({ host: u.hostname, port: Number(u.port || 5432) });
    sql = postgres(pg.url, { max: 1, onnotice: () => {} });
    onTestFailed(async () => { process.stderr.write(await procs.report()); });
  });
  afterEach(async () => {
    proxy.heal();
    await procs?.stopAll();
    await proxy.close();
    await sql.end({ timeout: 1 });
    await pg.drop();
  });

  async function service(name: string, args: string[], env: Record<string, string> = {}): Promise<{ proc: Proc; id: string }> {
    const proc = procs.start(name, args, env);
    return { proc, id: (await procs.waitForOutput(proc, READY, 90_000))[2] };
  }

  async function finish(runId: string) {
    await waitFor(async () => ['success', 'failed'].includes((await auditRun(pg.url, runId)).runState ?? ''), 'the run to finish', 120_000, 250);
  }

  it('a cut-off triggerer loses its triggers to the other, and after healing stops them without applying an event twice', async () => {
    const sizes: FaultSizes = { items: 40, itemMs: 100, waitMs: 9000, spreadMs: 200 };
    procs = new Procs(faultEnv(pg.url, sizes, TIMING));
    // B (behind the proxy) fills its capacity first; A, with room for everything, takes the rest.
    const [, , b] = await Promise.all([
      service('scheduler', ['scheduler']), service('worker', ['worker', '--slots', '16']),
      service('triggerer-b', ['triggerer', '--capacity', '15'], { DATABASE_URL: proxy.rewrite(pg.url) }),
    ]);
    const runId = 'partition_triggerer';
    expect((await procs.run(['dags', 'trigger', 'faults', '--run-id', runId])).code).toBe(0);
    await waitFor(async () => (await sql`select count(*)::int as n from triggers where triggerer_id = ${b.id}`)[0].n === 15, 'triggerer B to fill up', 90_000);
    const a = await service('triggerer-a', ['triggerer']);
    await waitFor(async () => (await sql`select count(*)::int as n from triggers where triggerer_id = ${a.id}`)[0].n > 0, 'triggerer A to hold triggers', 90_000);

    proxy.blackhole();
    const cut = Date.now();
    await waitFor(async () => (await sql`select count(*)::int as n from triggers where triggerer_id = ${b.id}`)[0].n === 0, 'triggerer A to take over', 60_000, 50);
    const takeoverMs = Date.now() - cut;
    // Heal while B still runs triggers that A now owns: B must find out and stop them.
    await waitFor(async () => (await sql`select count(*)::int as n from task_instances where task_id = 'wait' and state = 'deferred'`)[0].n > 0,
      'deferrals still waiting', 1000).catch(() => undefined);
    proxy.heal();
    await procs.waitForOutput(b.proc, /stopped \d+ trigger\(s\) no longer assigned here/, 60_000);
    await finish(runId);

    const audit = await auditRun(pg.url, runId);
    expect(auditProblems(audit, sizes)).toEqual([]);
    expect(procs.alive(a.proc) && procs.alive(b.proc)).toBe(true);
    process.stdout.write(`triggerer partition: takeover ${takeoverMs} ms after the cut (health threshold 3 s)\n`);
    expect(takeoverMs).toBeGreaterThanOrEqual(2500);
    recordFault('triggerer_partition', {
      healthThresholdMs: 3000, takeoverMs, runMs: audit.durationMs,
      baselineRunMs: await baselineMs((args) => procs.run(args), pg.url, 'partition_triggerer_baseline'), ...lostAndTwice(audit, sizes),
    });
  }, 300_000);

  it('a cut-off worker\'s TIs are retried elsewhere, and its late results are refused after healing', async () => {
    const sizes: FaultSizes = { items: 16, itemMs: 4000, waitMs: 1000 };
    procs = new Procs(faultEnv(pg.url, sizes, TIMING));
    await Promise.all([service('scheduler', ['scheduler']), service('triggerer', ['triggerer'])]);
    const w1 = await service('worker-1', ['worker', '--slots', '8'], { DATABASE_URL: proxy.rewrite(pg.url) });
    const runId = 'partition_worker';
    expect((await procs.run(['dags', 'trigger', 'faults', '--run-id', runId])).code).toBe(0);
    await waitFor(async () => (await sql`select count(*)::int as n from task_instances where worker_id = ${w1.id} and task_id = 'work' and state = 'running'`)[0].n >= 4,
      'worker 1 to run work TIs', 90_000);
    const w2 = await service('worker-2', ['worker', '--slots', '8']);

    proxy.blackhole();
    const cut = Date.now();
    const held = (await sql`select id from task_instances where worker_id = ${w1.id} and state = 'running'`).map((r) => Number(r.id));
    expect(held.length).toBeGreaterThan(0);
    await waitFor(async () => (await sql`select count(*)::int as n from task_instances where id in ${sql(held)} and state = 'running' and worker_id = ${w1.id}`)[0].n === 0,
      'the cut-off worker\'s TIs to be reaped', 60_000, 50);
    const reapMs = Date.now() - cut;
    await finish(runId);
    proxy.heal();
    await procs.waitForOutput(w1.proc, /result\(s\) refused, the TIs are no longer this worker's/, 60_000);

    // The fault costs each TI the cut-off worker held (or claimed unseen) one try, no more.
    const zombies = new Set((await sql`select distinct ti_id from task_instance_history where error like 'ZombieTaskError:%'`).map((r) => Number(r.ti_id)));
    for (const id of held) expect(zombies.has(id), `TI ${id} held by the cut-off worker was reaped`).toBe(true);
    const audit = await auditRun(pg.url, runId);
    expect(auditProblems(audit, sizes, zombies)).toEqual([]);
    const stale = await sql`select count(*)::int as n from xcom x join task_instances ti on ti.run_pk = x.run_pk and ti.task_id = x.task_id and ti.map_index = x.map_index
      where x.key = 'return_value' and (x.value ->> 'try')::int <> ti.try_number`;
    expect(stale[0].n).toBe(0);
    expect(procs.alive(w1.proc) && procs.alive(w2.proc)).toBe(true);
    process.stdout.write(`worker partition: ${held.length} TIs reaped ${reapMs} ms after the cut (zombie threshold 3 s)\n`);
    recordFault('worker_partition', {
      zombieThresholdMs: 3000, tisCutOff: held.length, reapedMs: reapMs, triesCost: zombies.size, runMs: audit.durationMs,
      baselineRunMs: await baselineMs((args) => procs.run(args), pg.url, 'partition_worker_baseline'), ...lostAndTwice(audit, sizes, zombies),
    });
  }, 300_000);
});
