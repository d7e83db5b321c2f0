/**
 * Run creation by an in-process Scheduler on in-memory PGlite: catchup, latest-only,
 * maxActiveRuns, and keeping the DAG table in step with the folder (removed files,
 * import errors).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { openDatabase, queries, DagBag, Worker, RunState, type Database } from '../../core/index.ts';
import { Scheduler, type SchedulerOptions } from '../../scheduler/index.ts';
import { waitFor } from '../helpers/pg.ts';
import { todayUtc, DAY } from '../helpers/int-db.ts';

const CRON = fileURLToPath(new URL('../fixtures/int-cron', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../fixtures', import.meta.url));

const dagFile = (dagId: string) => `import { dag, task } from 'updraft';\n
export default dag({ dagId: '${dagId}', schedule: null }, () => { task('only', async () => 1)(); });\n`;

describe('cron runs from an in-process scheduler', () => {
  let database: Database;
  let scheduler: Scheduler | undefined;
  let worker: Worker | undefined;
  let scratch: string | undefined;
  const logged: string[] = [];

  beforeEach(async () => {
    database = await openDatabase({ dataDir: 'memory://' });
    await database.migrate();
    logged.length = 0;
  });
  afterEach(async () => {
    await worker?.stop();
    await scheduler?.stop();
    worker = scheduler = undefined;
    await database.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    scratch = undefined;
  });

  async function start(folder: string, opts: Partial<SchedulerOptions> = {}): Promise<DagBag> {
    const dagBag = await DagBag.load(folder);
    scheduler = await Scheduler.create({ database, dagBag, watchFiles: false, zombieThresholdMs: 3_600_000, log: (m) => logged.push(m), ...opts });
    await scheduler.wake();
    return dagBag;
  }

  const runsOf = async (dagId: string) => (await queries.dagRuns.listRuns(database.db, dagId, 500))
    .sort((a, b) => a.logicalDate.getTime() - b.logicalDate.getTime());

  /** A DAG folder the test may change; it lives in the package so DAG files can import 'updraft'. */
  function scratchFolder(files: Record<string, string>): string {
    scratch = path.join(FIXTURES, `int-scratch-${randomUUID().slice(0, 8)}`);
    mkdirSync(scratch);
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(scratch, name), text);
    return scratch;
  }

  it('creates one run per missed interval when catching up, with its data interval', async () => {
    await start(CRON);
    const today = todayUtc().getTime();
    const runs = await runsOf('int_cron_catchup');
    expect(runs.map((r) => r.logicalDate.toISOString())).toEqual([5, 4, 3, 2, 1].map((d) => new Date(today - d * DAY).toISOString()));
    for (const r of runs) {
      expect(r.runType).toBe('scheduled');
      expect(r.runId).toBe(`scheduled__${r.logicalDate.toISOString()}`);
      expect(r.dataIntervalStart).toEqual(r.logicalDate);
      expect(r.dataIntervalEnd).toEqual(new Date(r.logicalDate.getTime() + DAY));
      expect(r.state).toBe(RunState.RUNNING);
    }
    const row = (await queries.dags.listDagRows(database.db)).find((d) => d.dagId === 'int_cron_catchup');
    expect(row?.lastIntervalEnd).toEqual(new Date(today));
    await scheduler!.wake();
    expect(await runsOf('int_cron_catchup')).toHaveLength(5);
  });

  it('creates only the latest interval when catchup is off', async () => {
    await start(CRON);
    await scheduler!.wake();
    const today = todayUtc().getTime();
    const runs = await runsOf('int_cron_latest');
    expect(runs.map((r) => [r.logicalDate, r.dataIntervalStart, r.dataIntervalEnd])).toEqual([
      [new Date(today - DAY), new Date(today - DAY), new Date(today)],
    ]);
  });

  it('keeps at most maxActiveRuns runs running, starting the oldest first', async () => {
    const dagBag = await start(CRON);
    let runs = await runsOf('int_cron_limited');
    expect(runs).toHaveLength(6);
    expect(runs.map((r) => r.state)).toEqual(['running', 'running', 'queued', 'queued', 'queued', 'queued']);

    worker = await Worker.create({ database, dagBag, slots: 8, heartbeatMs: 500 });
    let most = 0;
    await waitFor(async () => {
      const states = (await runsOf('int_cron_limited')).map((r) => r.state);
      most = Math.max(most, states.filter((s) => s === RunState.RUNNING).length);
      return states.every((s) => s === RunState.SUCCESS);
    }, 'every int_cron_limited run to succeed', 90_000, 20);
    expect(most).toBeLessThanOrEqual(2);

    // The recorded run windows never overlap more than two deep.
    runs = await runsOf('int_cron_limited');
    const edges = runs.flatMap((r) => [[r.startDate!.getTime(), 1], [r.endDate!.getTime(), -1]] as const)
      .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let depth = 0;
    for (const [, d] of edges) {
      depth += d;
      expect(depth).toBeLessThanOrEqual(2);
    }
    for (let i = 1; i < runs.length; i++) expect(runs[i].startDate!.getTime()).toBeGreaterThanOrEqual(runs[i - 1].startDate!.getTime());
    for (const r of runs) {
      expect(await queries.xcom.readXCom(database.db, r.id, 'report', 'return_value', -1)).toEqual({
        logicalDate: r.logicalDate.toISOString(), start: r.dataIntervalStart!.toISOString(), end: r.dataIntervalEnd!.toISOString(),
      });
    }
  });

  it('deactivates a DAG whose file was removed', async () => {
    const folder = scratchFolder({ 'keep.ts': dagFile('int_scratch_keep'), 'drop.ts': dagFile('int_scratch_drop') });
    await start(folder, { watchFiles: true });
    const active = async () => Object.fromEntries((await queries.dags.listDagRows(database.db)).map((d) => [d.dagId, d.isActive]));
    expect(await active()).toEqual({ int_scratch_keep: true, int_scratch_drop: true });
    rmSync(path.join(folder, 'drop.ts'));
    await waitFor(async () => (await active()).int_scratch_drop === false, 'int_scratch_drop to be deactivated');
    expect(await active()).toEqual({ int_scratch_keep: true, int_scratch_drop: false });
  });

  it('stores import errors per file, and clears them once the file is fixed', async () => {
    const folder = scratchFolder({
      'good.ts': dagFile('int_scratch_good'),
      'broken.ts': `throw new Error('broken on purpose');\n`,
      'bad_cron.ts': `import { dag } from 'updraft';\nexport default dag({ dagId: 'int_scratch_bad', schedule: 'every tuesday', startDate: '2024-01-01' }, () => {});\n`,
    });
    await start(folder, { watchFiles: true });
    const errors = async () => Object.fromEntries((await queries.dags.listImportErrors(database.db)).map((e) => [path.basename(e.fileloc), e.error]));
    let stored = await errors();
    expect(Object.keys(stored).sort()).toEqual(['bad_cron.ts', 'broken.ts']);
    expect(stored['broken.ts']).toContain('broken on purpose');
    expect(stored['bad_cron.ts']).toMatch(/DagDefinitionError: DAG "int_scratch_bad": invalid cron expression "every tuesday"/);
    const fileloc = (await queries.dags.listImportErrors(database.db)).map((e) => e.fileloc);
    expect(fileloc).toContain(path.join(folder, 'broken.ts'));
    expect((await queries.dags.listDagRows(database.db)).map((d) => d.dagId)).toEqual(['int_scratch_good']);

    writeFileSync(path.join(folder, 'broken.ts'), dagFile('int_scratch_fixed'));
    await waitFor(async () => !('broken.ts' in (await errors())), 'the import error of broken.ts to clear');
    stored = await errors();
    expect(Object.keys(stored)).toEqual(['bad_cron.ts']);
    expect((await queries.dags.listDagRows(database.db)).map((d) => d.dagId)).toEqual(['int_scratch_fixed', 'int_scratch_good']);
  });

  it('retries syncing the DAG table on the next pass after a failed sync', async () => {
    // Make the first sync fail inside the database, as a lost connection would.
    await database.db.execute(sql`create table fail_sync (on_off boolean)`);
    await database.db.execute(sql`insert into fail_sync values (true)`);
    await database.db.execute(sql.raw(`create function fail_sync_fn() returns trigger language plpgsql as $$
      begin if exists (select 1 from fail_sync) then raise exception 'simulated outage'; end if; return new; end $$`));
    await database.db.execute(sql`create trigger fail_sync_trg before insert or update on dags for each row execute function fail_sync_fn()`);
    await start(CRON);
    expect(logged.some((m) => m.startsWith('scheduler pass failed') && m.includes('insert into "dags"'))).toBe(true);
    expect(await queries.dags.listDagRows(database.db)).toEqual([]);

    await database.db.execute(sql`delete from fail_sync`);
    await scheduler!.wake();
    const ids = (await queries.dags.listDagRows(database.db)).map((d) => d.dagId);
    expect(ids).toEqual(['int_cron_catchup', 'int_cron_latest', 'int_cron_limited']);
    expect(await runsOf('int_cron_catchup')).toHaveLength(5);
  });
});
