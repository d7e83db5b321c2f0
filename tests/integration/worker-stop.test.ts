/**
 * A graceful worker stop must not leave work behind: once `stop()` resolves, every TI the
 * worker claimed is finished and recorded, and it claims nothing afterwards. Otherwise a TI
 * claimed during shutdown stays `running` until zombie detection burns one of its tries.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { openDatabase, DagBag, Worker, FINISHED_TASK_STATES, type Database } from '../../core/index.ts';
import { drivers, pgAvailable, waitFor } from '../helpers/pg.ts';
import { count, newRun, startRuns, syncDags } from '../helpers/int-db.ts';

const BASIC = fileURLToPath(new URL('../fixtures/int-proc-basic', import.meta.url));
const PREFETCH = fileURLToPath(new URL('../fixtures/worker-prefetch', import.meta.url));
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

describe.skipIf(!pgAvailable)('Worker prefetch on PostgreSQL', () => {
  let database: Database;
  let cleanup: () => Promise<void>;
  let dir: string;
  beforeEach(async () => {
    ({ database, cleanup } = await postgres.open());
    dir = mkdtempSync(path.join(os.tmpdir(), 'updraft-prefetch-'));
    process.env.PREFETCH_DIR = dir;
  });
  afterEach(async () => {
    writeFileSync(path.join(dir, 'open'), '');
    await cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('claims beyond its slots, runs no more than its slots, and hands back what never started on stop, no try counted', async () => {
    const bag = await DagBag.load(PREFETCH);
    const dag = bag.get('worker_prefetch');
    await syncDags(database, [dag]);
    const runPk = await newRun(database, dag, new Date(Date.UTC(2024, 0, 1)));
    await startRuns(database, dag);
    const started = () => readdirSync(dir).filter((f) => f.startsWith('started-'));
    const running = sql`select count(*) as n from task_instances where run_pk = ${runPk} and task_id = 'hold' and state = 'running'`;

    const worker = await Worker.create({ database, dagBag: bag, slots: 2, prefetch: 2, heartbeatMs: 500, log: () => {} });
    // Two slots and two prefetched: four TIs are the worker's, two of them executing.
    await waitFor(async () => (await count(database, running)) === 4, 'four TIs claimed (two slots, two prefetched)');
    await waitFor(() => started().length === 2, 'two TIs executing');
    expect(started()).toHaveLength(2);

    // stop() hands the two that never started back at once, while the two executing go on.
    const stopping = worker.stop();
    await waitFor(async () => (await count(database, running)) === 2, 'the prefetched TIs handed back');
    const back = await database.rows<{ state: string; try_number: number; worker_id: string | null }>(sql`
      select state, try_number, worker_id from task_instances where run_pk = ${runPk} and task_id = 'hold' and state <> 'running'`);
    expect(back).toHaveLength(4);
    expect(back.every((t) => t.state === 'scheduled' && t.worker_id === null)).toBe(true);
    writeFileSync(path.join(dir, 'open'), '');
    await stopping;

    // Another worker runs the rest; every item ran once, in try 1.
    const second = await Worker.create({ database, dagBag: bag, slots: 4, heartbeatMs: 500, log: () => {} });
    try {
      await waitFor(async () => (await count(database, sql`select count(*) as n from task_instances where run_pk = ${runPk} and task_id = 'hold' and state = 'success'`)) === 6, 'all six items done');
    } finally {
      await second.stop();
    }
    expect(started().sort()).toEqual([0, 1, 2, 3, 4, 5].map((n) => `started-${n}-try-1`));
    const tries = await database.rows<{ try_number: number }>(sql`select try_number from task_instances where run_pk = ${runPk} and task_id = 'hold'`);
    expect(tries.map((t) => Number(t.try_number))).toEqual([1, 1, 1, 1, 1, 1]);
  });
});

async function states(database: Database): Promise<Map<number, string>> {
  const rows = await database.rows<{ id: number; state: string }>(sql`select id, state from task_instances`);
  return new Map(rows.map((r) => [Number(r.id), r.state]));
}
