/**
 * Defer → fire → resume, in-process through runDagLocally (scheduler, worker and triggerer on
 * in-memory PGlite): the resume gets the event and its kwargs on a fresh operator, a task
 * may defer five times within one try, and large payloads travel by XCom reference.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { openDatabase, queries, DagBag, TaskState, type Database } from '../../core/index.ts';
import { EVENT_XCOM_KEY } from '../../core/db/queries/trigger-events.ts';
import { runDagLocally } from '../../cli/local-run.ts';
import { counter, fixture, resetShared } from './harness.ts';

describe('defer, fire and resume (runDagLocally)', () => {
  let bag: DagBag;
  let database: Database;

  beforeAll(async () => {
    bag = await DagBag.load(fixture('defer-core'));
    expect([...bag.errors]).toEqual([]);
  });
  beforeEach(async () => {
    resetShared();
    database = await openDatabase({ dataDir: 'memory://' });
    await database.migrate();
  });
  afterEach(async () => {
    await database.close();
  });

  const run = (dagId: string) => runDagLocally(database, bag, bag.get(dagId), {});
  const history = (tiId: number) => database.rows<{ try_number: number; state: string }>(
    sql`select try_number, state from task_instance_history where ti_id = ${tiId} order by id`);
  const xcom = (runPk: number, taskId: string, key = 'return_value') => queries.xcom.readXCom(database.db, runPk, taskId, key, -1);
  const runPkOf = async (runId: string) => (await queries.dagRuns.getRun(database.db, runId))[0].id;

  it('resumes in executeComplete with the payload and kwargs, on a fresh operator instance', async () => {
    const result = await run('defer_resume');
    expect(result.state).toBe('success');
    const [ti] = result.taskInstances;
    expect(ti).toMatchObject({ taskId: 'remember', state: TaskState.SUCCESS, tryNumber: 1, error: null });

    const value = await xcom(await runPkOf(result.runId), 'remember') as Record<string, unknown>;
    expect(value.event).toEqual({ echo: 'hello' });
    expect(value.contextEvent).toEqual({ echo: 'hello' });
    expect(value.kwargs).toEqual({ extra: 7 });
    expect(value.tryNumber).toBe(1);
    expect(counter('resume.execute')).toBe(1);
    expect(counter('resume.complete')).toBe(1);
    expect(counter('echo.runs')).toBe(1);
    // State set on the instance in execute() must not leak into the resume (Airflow: new instance).
    expect(value.markerOnResume, 'an instance field set in execute() survived into executeComplete()').toBeNull();
  });

  it('logs the deferral and records one history row for the whole try', async () => {
    const result = await run('defer_resume');
    const [ti] = result.taskInstances;
    const lines = (await queries.logs.readLogs(database.db, ti.id)).map((l) => `${l.tryNumber} ${l.message}`);
    expect(lines).toContainEqual(expect.stringMatching(/^1 deferred on trigger test\.EchoTrigger; resumes in executeComplete$/));
    expect(await history(ti.id)).toEqual([{ try_number: 1, state: TaskState.SUCCESS }]);
    const [{ n }] = await database.rows<{ n: number }>(sql`select count(*)::int as n from triggers`);
    expect(n).toBe(0);
  });

  it('chains five deferrals in one task: five trigger runs, one try', async () => {
    const result = await run('defer_chain');
    expect(result.state).toBe('success');
    const [ti] = result.taskInstances;
    expect(ti).toMatchObject({ taskId: 'chained', state: TaskState.SUCCESS, tryNumber: 1 });
    expect(counter('chain.runs')).toBe(5);
    expect(await xcom(await runPkOf(result.runId), 'chained')).toEqual({ steps: 5, lastEvent: { step: 4 }, tryNumber: 1 });
    expect(await history(ti.id)).toEqual([{ try_number: 1, state: TaskState.SUCCESS }]);
    const lines = (await queries.logs.readLogs(database.db, ti.id)).filter((l) => l.message.startsWith('deferred on trigger test.ChainTrigger'));
    expect(lines.map((l) => l.tryNumber)).toEqual([1, 1, 1, 1, 1]);
  });

  it('keeps XComs pushed before a deferral after the resume, in a retry as in the first try', async () => {
    const result = await run('defer_push');
    expect(result.state).toBe('success');
    const runPk = await runPkOf(result.runId);
    expect(result.taskInstances.map((t) => [t.taskId, t.state, t.tryNumber])).toEqual([
      ['first_try', TaskState.SUCCESS, 1], ['second_try', TaskState.SUCCESS, 2],
    ]);
    expect(await xcom(runPk, 'first_try')).toEqual({ echo: 'first_try' });
    expect(await xcom(runPk, 'first_try', 'before_defer')).toBe('pushed in try 1');
    expect(await xcom(runPk, 'second_try')).toEqual({ echo: 'second_try' });
    expect(await xcom(runPk, 'second_try', 'before_defer'), 'the XCom pushed before deferring in try 2 was deleted on resume')
      .toBe('pushed in try 2');
  });

  it('stores a payload over the inline limit as an XCom reference and an inline one in next_kwargs', async () => {
    const result = await run('defer_payload');
    expect(result.state).toBe('success');
    const runPk = await runPkOf(result.runId);
    // The task received the whole 100 KiB payload through the reference.
    expect(await xcom(runPk, 'big')).toEqual({ length: 100 * 1024, allX: true });
    const stored = await xcom(runPk, 'big', EVENT_XCOM_KEY) as { data: string } | undefined;
    expect(stored?.data).toHaveLength(100 * 1024);
    // A small payload rides inline: no event XCom at all.
    expect(await xcom(runPk, 'small')).toEqual({ length: 16, allX: true });
    expect(await xcom(runPk, 'small', EVENT_XCOM_KEY)).toBeUndefined();
    const keys = await database.rows<{ task_id: string; key: string }>(
      sql`select task_id, key from xcom where run_pk = ${runPk} order by task_id, key`);
    expect(keys).toEqual([
      { task_id: 'big', key: EVENT_XCOM_KEY }, { task_id: 'big', key: 'return_value' }, { task_id: 'small', key: 'return_value' },
    ]);
  });
});
