/**
 * A graceful worker stop must not leave work behind: once `stop()` resolves, every TI the
 * worker claimed is finished and recorded, and it claims nothing afterwards. Otherwise a TI
 * claimed during shutdown stays `running` until zombie detection burns one of its tries.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { openDatabase, DagBag, Worker, FINISHED_TASK_STATES, type Database } from '../../core/index.ts';
import { drivers, pgAvailable, waitFor } from '../helpers/pg.ts';
import { count, newRun, startRuns, syncDags } from '../helpers/int-db.ts';

const BASIC = fileURLToPath(new URL('../fixtures/int-proc-basic', import.meta.url));
const postgres = drivers.find((d) => d.name === 'postgres')!;

describe.skipIf(!pgAvailable)('Worker.stop() on PostgreSQL', () => {
  let database: Database;
  let url: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    const opened = await postgres.open();
    ({ database, cleanup } = opened);
    url = opened.url!;
  });
  afterEach(() => cleanup());

  it('does not return while a claim it started is still in flight', async () => {
    const bag = await DagBag.load(BASIC);
    const dag = bag.get('int_proc_basic');
    await syncDags(database, [dag]);
    for (let day = 1; day <= 3; day++) await newRun(database, dag, new Date(Date.UTC(2024, 0, day)));
    await startRuns(database, dag);

    // Hold the worker's first claim in flight: a table lock blocks its UPDATE. (pg_stat_activity
    // keeps only the first 1 KiB of a query, so the claim is matched by its opening CTE.)
    const locker = await openDatabase({ databaseUrl: url });
    let release!: () => void;
    const released = new Promise<void>((r) => { release = r; });
    const holding = locker.db.transaction(async (tx) => {
      await tx.execute(sql`lock table task_instances in exclusive mode`);
      await released;
    });
    const claimBlocked = sql`select count(*) as n from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock' and query ilike '%with usage as%'`;
    const claimActive = sql`select count(*) as n from pg_stat_activity
      where datname = current_database() and state = 'active' and query ilike '%with usage as%' and pid <> pg_backend_pid()`;
    let worker: Worker | undefined;
    let atStop: Map<number, string>;
    try {
      // The lock must be held before the worker's first claim, or the claim simply succeeds.
      await waitFor(async () => (await count(database, sql`select count(*) as n from pg_locks
        where relation = 'task_instances'::regclass and mode = 'ExclusiveLock' and granted`)) > 0, 'the table lock');
      worker = await Worker.create({ database, dagBag: bag, slots: 4, heartbeatMs: 500, log: () => {} });
      await waitFor(async () => (await count(database, claimBlocked)) > 0, 'the worker claim to wait on the lock');
      const stopping = worker.stop();
      const snapshot = stopping.then(() => states(database));
      // A correct stop() waits for the claim, so the claim goes on after stop() had its chance
      // to return on its own; a snapshot taken at its return shows what it left behind.
      let timer: NodeJS.Timeout | undefined;
      const early = await Promise.race([snapshot, new Promise<null>((r) => { timer = setTimeout(() => r(null), 10_000); })]);
      clearTimeout(timer);
      release();
      await holding;
      atStop = early ?? await snapshot;
    } finally {
      release();
      await holding.catch(() => undefined);
      await locker.close();
    }

    // Let a claim that outlived stop() land, then see what this worker took.
    await waitFor(async () => (await count(database, claimActive)) === 0, 'no claim in flight');
    const mine = await database.rows<{ id: number }>(sql`select id from task_instances where worker_id = ${worker.id}`);
    const leftOpen = mine.map((r) => Number(r.id)).filter((id) => !(FINISHED_TASK_STATES as readonly string[]).includes(atStop.get(id) ?? ''));
    // Stray work may still write; let it finish so the database can be dropped cleanly.
    await waitFor(async () => (await count(database, sql`select count(*) as n from task_instances where state = 'running'`)) === 0, 'stray tasks to settle', 30_000);
    expect(leftOpen, 'TIs claimed by the worker but not finished when stop() resolved').toEqual([]);
  });
});

async function states(database: Database): Promise<Map<number, string>> {
  const rows = await database.rows<{ id: number; state: string }>(sql`select id, state from task_instances`);
  return new Map(rows.map((r) => [Number(r.id), r.state]));
}
