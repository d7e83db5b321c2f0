/**
 * A PostgreSQL restart in the middle of a run, on a private cluster started for this file
 * (never the machine's shared server). Scheduler, worker and triggerer are real processes.
 * The restart ends every connection and in-flight transaction; each service must reconnect,
 * re-establish LISTEN, and finish the run with every TI succeeding in one try. Heartbeats
 * are 30 s apart here, so the resumes that follow the restart can only be prompt if NOTIFY
 * works again; the periodic safety nets are too slow to explain them.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { openDatabase } from '../../core/index.ts';
import { waitFor } from '../helpers/pg.ts';
import { Procs, type Proc } from '../helpers/int-procs.ts';
import { PrivatePg, privatePgAvailable } from '../helpers/private-pg.ts';
import { READY, auditProblems, auditRun, baselineMs, faultEnv, lagPercentile, lostAndTwice, recordFault, type FaultSizes } from '../helpers/faults.ts';

const SIZES: FaultSizes = { items: 40, itemMs: 400, waitMs: 6000 };
const RESUMED = /listening again after the database connection was lost/;

describe.skipIf(!privatePgAvailable)('fault: PostgreSQL restarts mid-run', () => {
  let pg: PrivatePg;
  let procs: Procs;

  beforeAll(async () => {
    pg = await PrivatePg.start({ name: 'restart' });
    const database = await openDatabase({ databaseUrl: pg.url });
    await database.migrate();
    await database.close();
    procs = new Procs(faultEnv(pg.url, SIZES, { UPDRAFT_HEARTBEAT: '30s', UPDRAFT_ZOMBIE_THRESHOLD: '120s', UPDRAFT_TRIGGERER_HEALTH_THRESHOLD: '120s' }));
  });
  afterAll(async () => {
    await procs?.stopAll();
    await pg?.stop();
  });
  beforeEach(({ onTestFailed }) => {
    onTestFailed(async () => { process.stderr.write(`${await procs.report()}\nserver log:\n${pg.logTail(40)}\n`); });
  });

  async function service(name: string, args: string[]): Promise<Proc> {
    const proc = procs.start(name, args);
    await procs.waitForOutput(proc, READY, 90_000);
    return proc;
  }

  it('reconnects every service, resumes LISTEN and finishes the run with no TI lost or run twice', async () => {
    const services = await Promise.all([
      service('scheduler', ['scheduler']), service('worker', ['worker', '--slots', '8']), service('triggerer', ['triggerer']),
    ]);
    const runId = 'restart_run';
    expect((await procs.run(['dags', 'trigger', 'faults', '--run-id', runId])).code).toBe(0);

    const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
    try {
      // Restart once the first deferrals are waiting in the triggerer and work TIs still run.
      await waitFor(async () => (await sql`select count(*)::int as n from triggers where triggerer_id is not null`)[0].n > 0, 'a claimed trigger', 90_000);
      await pg.restart({ downMs: 1000 });
    } finally {
      await sql.end({ timeout: 1 }).catch(() => undefined);
    }
    for (const p of services) await procs.waitForOutput(p, RESUMED, 60_000);

    await waitFor(async () => ['success', 'failed'].includes((await auditRun(pg.url, runId)).runState ?? ''), 'the run to finish', 120_000, 250);
    const audit = await auditRun(pg.url, runId);
    expect(auditProblems(audit, SIZES)).toEqual([]);
    // Every deferral resumed promptly after its moment: NOTIFY, not a 30 s heartbeat.
    expect(lagPercentile(audit, 100)).toBeLessThan(5000);
    for (const p of services) expect(procs.alive(p), p.name).toBe(true);
    recordFault('postgres_restart', {
      downMs: 1000, resumeLagMaxMs: lagPercentile(audit, 100), runMs: audit.durationMs,
      baselineRunMs: await baselineMs((a) => procs.run(a), pg.url, 'restart_baseline'), ...lostAndTwice(audit, SIZES),
    });
  }, 300_000);
});
