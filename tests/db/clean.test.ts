/**
 * `db clean` on PostgreSQL, in small batches, while an in-process scheduler and worker run DAG
 * runs on the same database; and the command's refusal without --yes and its dry run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { DagBag, openDatabase, queries, triggerDagRun, RunState, Worker, type Database } from '../../core/index.ts';
import { Scheduler } from '../../scheduler/index.ts';
import { createTestDatabase, pgAvailable, waitFor, type TestPg } from '../helpers/pg.ts';
import { ROOT, runCli } from '../helpers/cli.ts';

const FOLDER = path.join(ROOT, 'tests/fixtures/backfill');

/** Finished runs that ended `daysAgo` days ago, each with TIs, history, logs and XComs. */
async function seedOldRuns(database: Database, prefix: string, runs: number, daysAgo: number): Promise<void> {
  const at = `now() - interval '${daysAgo} days'`;
  await database.db.execute(sql.raw(`insert into dag_runs (dag_id, run_id, run_type, state, logical_date, queued_at, start_date, end_date)
    select 'old_dag', '${prefix}' || g, 'scheduled', case when g % 2 = 0 then 'success' else 'failed' end, ${at} - g * interval '1 minute', ${at}, ${at}, ${at}
    from generate_series(1, ${runs}) g`));
  await database.db.execute(sql.raw(`insert into task_instances (run_pk, dag_id, run_id, task_id, state, try_number, operator)
    select r.id, r.dag_id, r.run_id, 't' || g, 'success', 1, '@task' from dag_runs r, generate_series(1, 20) g where r.run_id like '${prefix}%'`));
  await database.db.execute(sql.raw(`insert into task_instance_history (ti_id, dag_id, run_id, task_id, map_index, try_number, state)
    select id, dag_id, run_id, task_id, -1, 1, 'success' from task_instances where run_id like '${prefix}%'`));
  await database.db.execute(sql.raw(`insert into logs (ti_id, try_number, ts, level, message) select id, 1, ${at}, 'info', 'line' from task_instances where run_id like '${prefix}%'`));
  await database.db.execute(sql.raw(`insert into xcom (run_pk, task_id, key, value, created_at) select run_pk, task_id, 'return_value', '1'::jsonb, ${at} from task_instances where run_id like '${prefix}%'`));
}

const count = async (database: Database, query: string) => Number(Object.values((await database.rows<Record<string, string>>(sql.raw(query)))[0])[0]);

describe.skipIf(!pgAvailable)('db clean beside a running scheduler (PostgreSQL)', () => {
  let pg: TestPg;
  let database: Database;
  beforeAll(async () => {
    pg = await createTestDatabase();
    database = await openDatabase({ databaseUrl: pg.url });
    await database.migrate();
  });
  afterAll(async () => {
    await database?.close();
    await pg?.drop();
  });

  it('deletes old finished runs\' rows in batches while new runs keep finishing', async () => {
    await seedOldRuns(database, 'old__', 40, 30);
    await seedOldRuns(database, 'recent__', 5, 1);
    await database.db.execute(sql.raw(`insert into triggers (name, kwargs, hash, created_date) values
      ('orphan', '{}', 'h1', now() - interval '30 days'), ('recent', '{}', 'h2', now())`));
    const bag = await DagBag.load(FOLDER);
    await database.db.transaction((tx) => queries.dags.syncDagBag(tx, bag.dags.values(), bag.errors));
    const scheduler = await Scheduler.create({ database, dagBag: bag, watchFiles: false, createScheduledRuns: false, zombieThresholdMs: 3_600_000, log: () => {} });
    const worker = await Worker.create({ database, dagBag: bag, slots: 8, heartbeatMs: 500 });
    try {
      const live: number[] = [];
      let batches = 0;
      const cleaning = queries.cleanup.cleanBefore(database.db, { before: new Date(Date.now() - 7 * 86_400_000), batchSize: 100, onBatch: () => { batches++; } });
      for (let i = 0; i < 5; i++) live.push((await triggerDagRun(database, bag.get('bf_manual'), {})).runPk);
      await scheduler.wake();
      const deleted = await cleaning;
      await waitFor(async () => {
        for (const pk of live) if ((await queries.dagRuns.getRunByPk(database.db, pk))?.state !== RunState.SUCCESS) return false;
        return true;
      }, 'the runs started during the clean to succeed', 30_000, 20);

      expect(deleted).toEqual({ logs: 800, task_instance_history: 800, xcom: 800, task_instances: 800, dataset_events: 0, triggers: 1 });
      expect(batches).toBeGreaterThanOrEqual(4 * 8);
      expect(await count(database, "select count(*) from task_instances where run_id like 'old__%'")).toBe(0);
      expect(await count(database, "select count(*) from task_instances where run_id like 'recent__%'")).toBe(100);
      expect(await count(database, "select count(*) from logs l join task_instances ti on ti.id = l.ti_id where ti.run_id like 'recent__%'")).toBe(100);
      expect(await count(database, "select count(*) from dag_runs where run_id like 'old__%'")).toBe(40);
      expect(await count(database, 'select count(*) from triggers')).toBe(1);
      for (const pk of live) expect(await queries.xcom.readXCom(database.db, pk, 'day', 'return_value', -1)).toEqual(expect.any(String));
    } finally {
      await worker.stop();
      await scheduler.stop();
    }
  });
});

describe('updraft db clean', () => {
  let dataDir: string;
  beforeAll(() => { dataDir = mkdtempSync(path.join(os.tmpdir(), 'updraft-clean-cli-')); });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));
  const env = () => ({ UPDRAFT_DATA_DIR: dataDir, UPDRAFT_DAGS_FOLDER: FOLDER });

  it('refuses to delete without --yes, naming --dry-run', async () => {
    const r = await runCli(['db', 'clean', '--before', '2024-01-01'], env());
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('updraft: db clean deletes rows from logs, task_instance_history, xcom, task_instances, dataset_events, triggers older than '
      + '2024-01-01T00:00:00.000Z and cannot be undone; look first with --dry-run, then run again with --yes\n');
    expect((await runCli(['db', 'clean', '--before', '2024-01-01', '--table', 'dag_runs', '--yes'], env())).stderr)
      .toMatch(/^updraft: --table "dag_runs" is not cleanable; use one of logs, /);
  });

  it('counts what it would delete with --dry-run, and deletes with --yes', async () => {
    const database = await openDatabase({ dataDir: path.join(dataDir, 'db') });
    await database.migrate();
    await seedOldRuns(database, 'old__', 3, 30);
    await database.close();
    const dry = await runCli(['db', 'clean', '--before', new Date(Date.now() - 86_400_000).toISOString(), '--table', 'logs,xcom', '--dry-run', '--json'], env());
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout).rows).toEqual({ logs: 60, xcom: 60 });
    const wet = await runCli(['db', 'clean', '--before', new Date(Date.now() - 86_400_000).toISOString(), '--yes', '--json'], env());
    expect(wet.code, wet.stderr).toBe(0);
    expect(JSON.parse(wet.stdout).deleted).toMatchObject({ logs: 60, xcom: 60, task_instances: 60, task_instance_history: 60 });
  });
});
