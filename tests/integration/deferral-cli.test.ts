/**
 * `updraft triggers list` and `updraft tasks mark-failed` as real CLI processes against a
 * PostgreSQL database where a TI waits on an hour-long trigger (scheduler, worker and
 * triggerer run in this process).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { openDatabase, triggerDagRun, DagBag, Worker, TaskState, type Database } from '../../core/index.ts';
import { Scheduler } from '../../scheduler/index.ts';
import { Triggerer } from '../../triggerer/index.ts';
import { createTestDatabase, pgAvailable, waitFor, type TestPg } from '../helpers/pg.ts';
import { Procs } from '../helpers/int-procs.ts';
import { tiMap } from '../helpers/int-db.ts';

const CLI = fileURLToPath(new URL('../fixtures/defer-cli', import.meta.url));

interface ListedTrigger { id: number; name: string; triggerer: string; ageS: number; tis: string[] }

describe.skipIf(!pgAvailable)('updraft triggers list on PostgreSQL', () => {
  let pg: TestPg;
  let database: Database;
  let procs: Procs;
  let scheduler: Scheduler | undefined;
  let worker: Worker | undefined;
  let triggerer: Triggerer | undefined;

  beforeAll(async () => {
    pg = await createTestDatabase('updraft_defer_cli');
    database = await openDatabase({ databaseUrl: pg.url });
    await database.migrate();
    procs = new Procs({ DATABASE_URL: pg.url, UPDRAFT_DAGS_FOLDER: CLI });
  });
  afterEach(async () => {
    await triggerer?.stop();
    await worker?.stop();
    await scheduler?.stop();
    triggerer = worker = scheduler = undefined;
  });
  afterAll(async () => {
    await procs?.stopAll();
    await database?.close();
    await pg?.drop();
  });
  beforeEach(({ onTestFailed }) => {
    onTestFailed(async () => { process.stderr.write(await procs.report()); });
  });

  async function listJson(): Promise<ListedTrigger[]> {
    const { code, output } = await procs.run(['triggers', 'list', '--json']);
    expect(code, output).toBe(0);
    const line = output.split('\n').find((l) => l.startsWith('['));
    expect(line, output).toBeDefined();
    return JSON.parse(line!) as ListedTrigger[];
  }

  it('shows a waiting trigger, who runs it and its TI, and nothing once the TI is marked failed', async () => {
    const bag = await DagBag.load(CLI);
    scheduler = await Scheduler.create({ database, dagBag: bag, watchFiles: false, createScheduledRuns: false, log: () => {} });
    await scheduler.wake();
    worker = await Worker.create({ database, dagBag: bag, slots: 4, log: () => {} });
    const { runPk, runId } = await triggerDagRun(database, bag.get('defer_cli'));
    const ti = await waitFor(async () => {
      const t = (await tiMap(database, runPk)).get('wait');
      return t?.state === TaskState.DEFERRED ? t : null;
    }, 'the TI to defer', 60_000);

    // No triggerer yet: the row is unclaimed.
    expect(await listJson()).toEqual([
      { id: ti.triggerId, name: 'updraft.TimeDeltaTrigger', triggerer: '(unclaimed)', ageS: expect.any(Number), tis: [`defer_cli.wait ${runId}`] },
    ]);

    const t = await Triggerer.create({ database, log: () => {} });
    triggerer = t;
    await waitFor(() => t.runs.has(ti.triggerId!), 'the triggerer to claim the trigger', 60_000);
    const [listed] = await listJson();
    expect(listed).toEqual({ id: ti.triggerId, name: 'updraft.TimeDeltaTrigger', triggerer: t.id, ageS: expect.any(Number), tis: [`defer_cli.wait ${runId}`] });
    expect(listed.ageS).toBeGreaterThanOrEqual(0);

    const table = await procs.run(['triggers', 'list']);
    expect(table.code, table.output).toBe(0);
    expect(table.output).toMatch(/id\s+name\s+triggerer\s+ageS\s+tis/);
    expect(table.output).toContain(`defer_cli.wait ${runId}`);

    const marked = await procs.run(['tasks', 'mark-failed', 'defer_cli', runId, 'wait']);
    expect(marked.code, marked.output).toBe(0);
    expect(marked.output).toContain(`marked failed 1 task instance(s); killed trigger(s) ${ti.triggerId}`);
    await waitFor(() => !t.runs.has(ti.triggerId!), 'the triggerer to drop the killed trigger', 30_000);
    expect(await listJson()).toEqual([]);
    const empty = await procs.run(['triggers', 'list']);
    expect(empty.output).toContain('no triggers');
    expect((await tiMap(database, runPk)).get('wait')).toMatchObject({ state: TaskState.FAILED, triggerId: null });
  }, 180_000);
});
