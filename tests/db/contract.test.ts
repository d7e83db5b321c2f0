/** The database contract, unchanged on PGlite and PostgreSQL, each test on a fresh database. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { sql } from 'drizzle-orm';
import {
  dag, task, TriggerRule, queries, notify, Channel, evaluateRun, openDatabase, DagBag, RunState, TaskState, type Database,
} from '../../core/index.ts';
import { isRequireFailure } from '../../core/db/client.ts';
import { runDagLocally } from '../../cli/local-run.ts';
import { drivers, waitFor } from '../helpers/pg.ts';
import { count, newRun, setTiState, startRuns, syncDags, tiMap } from '../helpers/int-db.ts';

const FIXTURES = fileURLToPath(new URL('../fixtures/int-contract', import.meta.url));
const at = (iso: string) => new Date(`${iso}T00:00:00Z`);
const noop = async () => null;

// a -> b -> c, a -> d (all_done), s -> t -> u, and a root x with two retries.
const shape = dag({ dagId: 'shape', maxActiveRuns: 2 }, () => {
  const a = task('a', noop)();
  const b = task('b', noop)();
  a.then(b).then(task('c', noop)());
  a.then(task({ taskId: 'd', triggerRule: TriggerRule.ALL_DONE }, noop)());
  task('s', noop)().then(task('t', noop)()).then(task('u', noop)());
  task({ taskId: 'x', retries: 2 }, noop)();
});
const prio = dag({ dagId: 'prio' }, () => {
  task({ taskId: 'p_low', priorityWeight: 1 }, noop)();
  task({ taskId: 'p_high', priorityWeight: 10 }, noop)();
  task({ taskId: 'p_mid', priorityWeight: 5 }, noop)();
  task({ taskId: 'p_other_queue', priorityWeight: 100, queue: 'other' }, noop)();
});
const wide = dag({ dagId: 'wide', maxActiveTasks: 100 }, () => {
  for (let i = 0; i < 40; i++) task(`w${i}`, noop)();
});

for (const driver of drivers) {
  describe.skipIf(!driver.available)(driver.name, () => {
    let database: Database, url: string | null, cleanup: () => Promise<void>;
    beforeEach(async () => { ({ database, url, cleanup } = await driver.open()); });
    afterEach(() => cleanup());

    /** A run of `shape` started, its root TIs claimed by w1; `id` finds one by task id. */
    const claimShapeRoots = async () => {
      await syncDags(database, [shape]);
      const runPk = await newRun(database, shape, at('2024-01-01'));
      await startRuns(database, shape);
      const claimed = await queries.taskInstances.claimScheduled(database, 'w1', ['default'], 10);
      return { runPk, claimed, id: (taskId: string) => claimed.find((c) => c.taskId === taskId)!.id };
    };

    it('applies the migrations, and applying them again changes nothing', async () => {
      const tables = (await database.rows<{ t: string }>(sql`select table_name as t from information_schema.tables where table_schema = 'public'`)).map((r) => r.t);
      expect(tables).toEqual(expect.arrayContaining(['dags', 'import_errors', 'dag_runs', 'task_instances', 'task_instance_history', 'xcom', 'triggers', 'pools', 'connections', 'variables', 'logs', 'jobs',
        'datasets', 'dataset_events', 'dag_schedule_datasets', 'task_outlet_datasets', 'pending_dataset_events', 'dag_run_dataset_events', 'callback_requests']));
      const indexes = (await database.rows<{ i: string }>(sql`select indexname as i from pg_indexes where tablename = 'dag_runs'`)).map((r) => r.i);
      expect(indexes).toEqual(expect.arrayContaining(['dag_runs_dag_run_id', 'dag_runs_dag_logical_date']));
      await database.migrate();
      const journal = JSON.parse(readFileSync(new URL('../../drizzle/meta/_journal.json', import.meta.url), 'utf8')) as { entries: unknown[] };
      expect(await count(database, sql`select count(*) as n from drizzle.__drizzle_migrations`)).toBe(journal.entries.length);
    });

    it('runs a pipeline as one transaction, in order, and rolls it all back when a statement fails', async () => {
      const [inserted, seen] = await database.pipeline([
        sql`insert into pools (name, slots, include_deferred) values ('pipe_a', 3, false) returning name`,
        sql`select slots from pools where name = 'pipe_a'`,
      ]);
      expect(inserted).toEqual([{ name: 'pipe_a' }]);
      expect(seen).toEqual([{ slots: 3 }]);
      const failing = database.pipeline([
        sql`insert into pools (name, slots, include_deferred) values ('pipe_b', 1, false)`,
        sql`select updraft_require(false, 'the condition did not hold')`,
        sql`insert into pools (name, slots, include_deferred) values ('pipe_c', 1, false)`,
      ]);
      const err = await failing.then(() => null, (e: unknown) => e);
      expect(isRequireFailure(err), String(err)).toBe(true);
      expect((err as Error).message).toContain('the condition did not hold');
      expect(await count(database, sql`select count(*) as n from pools where name in ('pipe_b', 'pipe_c')`)).toBe(0);
      // The connection is usable afterwards, outside any transaction.
      const [again] = await database.pipeline([sql`select count(*)::int as n from pools where name = 'pipe_a'`]);
      expect(again).toEqual([{ n: 1 }]);
    });

    it('creates a run once per (dag_id, logical_date) and per run_id', async () => {
      await syncDags(database, [shape]);
      const pk = await newRun(database, shape, at('2024-01-01'), 'r1');
      const again = (runId: string, logicalDate: Date, dagId = 'shape') => queries.dagRuns.createRun(database.db, {
        dagId, runId, runType: 'manual', logicalDate, dataIntervalStart: null, dataIntervalEnd: null, conf: {},
      });
      expect(await again('r2', at('2024-01-01'))).toBeNull();
      expect(await again('r1', at('2024-01-02'))).toBeNull();
      expect(await again('r1', at('2024-01-01'), 'prio')).toEqual(expect.any(Number));
      expect(await count(database, sql`select count(*) as n from dag_runs where dag_id = 'shape'`)).toBe(1);
      expect((await queries.dagRuns.getRunByPk(database.db, pk))?.state).toBe(RunState.QUEUED);
      if (url) {
        // Two connections racing for the same logical date: exactly one wins.
        const other = await openDatabase({ databaseUrl: url });
        try {
          const mk = (db: Database, runId: string) => queries.dagRuns.createRun(db.db, {
            dagId: 'shape', runId, runType: 'manual', logicalDate: at('2024-02-01'), dataIntervalStart: null, dataIntervalEnd: null, conf: {},
          });
          const results = await Promise.all([mk(database, 'race_a'), mk(other, 'race_b')]);
          expect(results.filter((r) => r !== null)).toHaveLength(1);
        } finally {
          await other.close();
        }
      }
    });

    it('starts queued runs oldest first within maxActiveRuns, with root TIs scheduled', async () => {
      await syncDags(database, [shape]);
      const late = await newRun(database, shape, at('2024-01-03'));
      const early = await newRun(database, shape, at('2024-01-01'));
      const mid = await newRun(database, shape, at('2024-01-02'));
      const started = await startRuns(database, shape);
      expect(started.map((r) => r.runPk)).toEqual([early, mid]);
      expect(started.map((r) => r.scheduled)).toEqual([3, 3]);
      const tis = await tiMap(database, early);
      expect([...tis.keys()].sort()).toEqual(['a', 'b', 'c', 'd', 's', 't', 'u', 'x']);
      for (const [id, ti] of tis) {
        const root = ['a', 's', 'x'].includes(id);
        expect(ti.state, id).toBe(root ? TaskState.SCHEDULED : TaskState.NONE);
        expect(ti.scheduledAt === null, id).toBe(!root);
        expect(ti.tryNumber).toBe(0);
        expect(ti.maxTries, id).toBe(id === 'x' ? 3 : 1);
      }
      expect(await startRuns(database, shape)).toEqual([]);
      expect((await queries.dagRuns.getRunByPk(database.db, late))?.state).toBe(RunState.QUEUED);
      await database.db.execute(sql`update dag_runs set state = 'success' where id = ${early}`);
      expect((await startRuns(database, shape)).map((r) => r.runPk)).toEqual([late]);
    });

    it('claims by priority, then FIFO by scheduled time, only from the given queues', async () => {
      await syncDags(database, [prio]);
      const first = await newRun(database, prio, at('2024-01-01'));
      const second = await newRun(database, prio, at('2024-01-02'));
      await startRuns(database, prio);
      // The second run's TIs were scheduled earlier, so FIFO puts them first despite larger ids.
      await database.db.execute(sql`update task_instances set scheduled_at = '2024-01-01T00:00:01Z' where run_pk = ${first}`);
      await database.db.execute(sql`update task_instances set scheduled_at = '2024-01-01T00:00:00Z' where run_pk = ${second}`);
      const order: string[] = [];
      for (;;) {
        const claimed = await queries.taskInstances.claimScheduled(database, 'w1', ['default'], 1);
        if (!claimed.length) break;
        expect(claimed[0].tryNumber).toBe(1);
        order.push(`${claimed[0].taskId}@${claimed[0].runPk === first ? 1 : 2}`);
      }
      expect(order).toEqual(['p_high@2', 'p_high@1', 'p_mid@2', 'p_mid@1', 'p_low@2', 'p_low@1']);
      const other = await queries.taskInstances.claimScheduled(database, 'w2', ['other', 'default'], 10);
      expect(other.map((c) => c.taskId)).toEqual(['p_other_queue', 'p_other_queue']);
      const rows = await database.rows<{ state: string; worker_id: string }>(sql`select state, worker_id from task_instances`);
      expect(rows.every((r) => r.state === TaskState.RUNNING)).toBe(true);
    });

    it('never hands the same TI to two concurrent claimers', async () => {
      await syncDags(database, [wide]);
      const runPk = await newRun(database, wide, at('2024-01-01'));
      await startRuns(database, wide);
      const second = url ? await openDatabase({ databaseUrl: url }) : database;
      const got = new Map<string, number[]>([['wa', []], ['wb', []]]);
      const drain = async (db: Database, workerId: string) => {
        for (;;) {
          const claimed = await queries.taskInstances.claimScheduled(db, workerId, ['default'], 3);
          if (!claimed.length) return;
          got.get(workerId)!.push(...claimed.map((c) => c.id));
        }
      };
      try {
        await (url ? Promise.all([drain(database, 'wa'), drain(second, 'wb')]) : drain(database, 'wa').then(() => drain(database, 'wb')));
      } finally {
        if (second !== database) await second.close();
      }
      const all = [...got.get('wa')!, ...got.get('wb')!];
      expect(new Set(all).size).toBe(all.length);
      expect(all).toHaveLength(40);
      for (const ti of (await tiMap(database, runPk)).values()) {
        expect(ti.state).toBe(TaskState.RUNNING);
        expect(ti.tryNumber).toBe(1);
        expect(got.get(ti.workerId!)).toContain(ti.id);
      }
    });

    it('applies a finish only while the TI is running for that worker and try', async () => {
      const { runPk, id } = await claimShapeRoots();
      const fin = (workerId: string, tiId: number, tryNumber: number, state: TaskState, nextRetryAt: Date | null = null) =>
        database.db.transaction((tx) => queries.taskInstances.finishTis(tx, database, workerId, [{
          id: tiId, tryNumber, state, endDate: new Date(), duration: 0.5, error: state === 'success' ? null : 'Error: boom', nextRetryAt,
        }]));
      expect([...await fin('w2', id('a'), 1, TaskState.SUCCESS)]).toEqual([]);
      expect([...await fin('w1', id('a'), 2, TaskState.SUCCESS)]).toEqual([]);
      expect((await tiMap(database, runPk)).get('a')?.state).toBe(TaskState.RUNNING);
      expect([...await fin('w1', id('a'), 1, TaskState.SUCCESS)]).toEqual([id('a')]);
      expect([...await fin('w1', id('a'), 1, TaskState.FAILED)]).toEqual([]);
      expect([...await fin('w1', id('x'), 1, TaskState.UP_FOR_RETRY, new Date(Date.now() - 1000))]).toEqual([id('x')]);
      let tis = await tiMap(database, runPk);
      expect(tis.get('a')).toMatchObject({ state: TaskState.SUCCESS, error: null, duration: 0.5 });
      expect(tis.get('x')).toMatchObject({ state: TaskState.UP_FOR_RETRY, error: 'Error: boom' });
      // The retry is claimed by another worker; a late finish of try 1 must not land.
      expect(await queries.taskInstances.releaseDueRetries(database.db)).toBe(1);
      const retry = await queries.taskInstances.claimScheduled(database, 'w2', ['default'], 10);
      expect(retry.map((c) => [c.taskId, c.tryNumber])).toEqual([['x', 2]]);
      expect([...await fin('w1', id('x'), 1, TaskState.FAILED)]).toEqual([]);
      expect([...await fin('w2', id('x'), 2, TaskState.SUCCESS)]).toEqual([id('x')]);
      tis = await tiMap(database, runPk);
      expect(tis.get('x')).toMatchObject({ state: TaskState.SUCCESS, tryNumber: 2, workerId: 'w2', error: null });
    });

    it('heartbeats only the worker\'s running TIs, skipping rows another transaction holds instead of waiting for them', async () => {
      const { runPk, claimed, id } = await claimShapeRoots();
      await database.db.execute(sql`update task_instances set heartbeat_at = now() - interval '1 hour'`);
      await database.db.execute(sql`update task_instances set worker_id = 'w2' where id = ${id('x')}`);
      const fresh = async () => new Set((await database.rows<{ task_id: string }>(sql`
        select task_id from task_instances where run_pk = ${runPk} and heartbeat_at > now() - interval '1 minute'`)).map((r) => r.task_id));
      const all = claimed.map((c) => c.id);
      if (url) {
        // The worker's own finishing batch holds a's row, as a pipelined flush does mid-transaction.
        const second = await openDatabase({ databaseUrl: url });
        try {
          await second.db.transaction(async (tx) => {
            await tx.execute(sql`update task_instances set end_date = now() where id = ${id('a')}`);
            let timer: NodeJS.Timeout | undefined;
            const waited = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('the heartbeat waited for a row another transaction holds')), 20_000); });
            await Promise.race([queries.taskInstances.heartbeatTis(database.db, 'w1', all), waited]).finally(() => clearTimeout(timer));
          });
        } finally {
          await second.close();
        }
        expect(await fresh()).toEqual(new Set(['s']));
      }
      await queries.taskInstances.heartbeatTis(database.db, 'w1', all);
      // x now belongs to w2: w1's heartbeat must not keep it alive.
      expect(await fresh()).toEqual(new Set(['a', 's']));
    });

    it('schedules the downstream whose trigger rules are met, and only those', async () => {
      await syncDags(database, [shape]);
      const runPk = await newRun(database, shape, at('2024-01-01'));
      await startRuns(database, shape);
      await setTiState(database, runPk, 'a', TaskState.SUCCESS);
      const result = await database.db.transaction((tx) => evaluateRun(tx, runPk, shape, ['b', 'd', 't']));
      expect(result).toEqual({ scheduled: 2, skipped: 0, upstreamFailed: 0 });
      const tis = await tiMap(database, runPk);
      expect(tis.get('b')?.state).toBe(TaskState.SCHEDULED);
      expect(tis.get('b')?.scheduledAt).toBeInstanceOf(Date);
      expect(tis.get('d')?.state).toBe(TaskState.SCHEDULED);
      expect(tis.get('c')?.state).toBe(TaskState.NONE);
      expect(tis.get('t')?.state).toBe(TaskState.NONE);
    });

    it('cascades upstream_failed and skipped down the graph', async () => {
      await syncDags(database, [shape]);
      const runPk = await newRun(database, shape, at('2024-01-01'));
      await startRuns(database, shape);
      await setTiState(database, runPk, 'a', TaskState.FAILED);
      await setTiState(database, runPk, 's', TaskState.SKIPPED);
      await setTiState(database, runPk, 'x', TaskState.SUCCESS);
      expect(await evaluateRun(database.db, runPk, shape, null)).toEqual({ scheduled: 1, skipped: 2, upstreamFailed: 2 });
      const states = Object.fromEntries([...await tiMap(database, runPk)].map(([id, ti]) => [id, ti.state]));
      expect(states).toMatchObject({ b: 'upstream_failed', c: 'upstream_failed', d: 'scheduled', t: 'skipped', u: 'skipped' });
      expect((await tiMap(database, runPk)).get('c')?.endDate).toBeInstanceOf(Date);
      expect(await evaluateRun(database.db, runPk, shape, null)).toEqual({ scheduled: 0, skipped: 0, upstreamFailed: 0 });
      expect(await queries.dagRuns.finishRunIfDone(database.db, runPk, shape)).toBeNull();
      await setTiState(database, runPk, 'd', TaskState.SUCCESS);
      await database.db.execute(sql`update dag_runs set state = 'running' where id = ${runPk}`);
      expect(await queries.dagRuns.finishRunIfDone(database.db, runPk, shape)).toBe(RunState.FAILED);
    });

    it('round-trips XComs, upserting on (run, task, map index, key)', async () => {
      await syncDags(database, [shape]);
      const runPk = await newRun(database, shape, at('2024-01-01'));
      const item = (taskId: string, key: string, value: unknown, mapIndex = -1) => ({ runPk, taskId, mapIndex, key, value });
      const nested = { rows: [1, 'two', { three: true }], none: null, n: 1.5 };
      await queries.xcom.writeXComs(database.db, [item('a', 'return_value', nested), item('a', 'count', 42), item('b', 'return_value', 'text'), item('a', 'return_value', 'mapped', 0)]);
      expect(await queries.xcom.readXCom(database.db, runPk, 'a', 'return_value', -1)).toEqual(nested);
      expect(await queries.xcom.readXCom(database.db, runPk, 'a', 'count', -1)).toBe(42);
      expect(await queries.xcom.readXCom(database.db, runPk, 'a', 'return_value', 0)).toBe('mapped');
      expect(await queries.xcom.readXCom(database.db, runPk, 'zz', 'return_value', -1)).toBeUndefined();
      const many = await queries.xcom.readXComs(database.db, runPk, [{ taskId: 'a', key: 'return_value' }, { taskId: 'b', key: 'return_value' }]);
      expect(many.get(queries.xcom.xcomKey('a', 'return_value'))).toEqual(nested);
      expect(many.get(queries.xcom.xcomKey('b', 'return_value'))).toBe('text');
      await queries.xcom.writeXComs(database.db, [item('a', 'return_value', { replaced: true })]);
      expect(await queries.xcom.readXCom(database.db, runPk, 'a', 'return_value', -1)).toEqual({ replaced: true });
      expect(await count(database, sql`select count(*) as n from xcom where run_pk = ${runPk}`)).toBe(4);
      await queries.xcom.clearXComs(database.db, runPk, 'a', -1);
      expect(await count(database, sql`select count(*) as n from xcom where run_pk = ${runPk}`)).toBe(2);
      expect(await queries.xcom.readXCom(database.db, runPk, 'b', 'return_value', -1)).toBe('text');
    });

    it('stores and reads task logs per try, in order', async () => {
      const line = (tiId: number, tryNumber: number, message: string) => ({ tiId, tryNumber, ts: new Date(), level: 'info', message });
      await queries.logs.writeLogs(database.db, [line(7, 1, 'one-a'), line(7, 2, 'two-a'), line(8, 1, 'other ti'), line(7, 1, 'one-b')]);
      await queries.logs.writeLogs(database.db, [line(7, 2, 'two-b')]);
      expect((await queries.logs.readLogs(database.db, 7, 1)).map((l) => l.message)).toEqual(['one-a', 'one-b']);
      expect((await queries.logs.readLogs(database.db, 7, 2)).map((l) => l.message)).toEqual(['two-a', 'two-b']);
      expect((await queries.logs.readLogs(database.db, 7)).map((l) => `${l.tryNumber}:${l.message}`)).toEqual(['1:one-a', '1:one-b', '2:two-a', '2:two-b']);
      expect(await queries.logs.readLogs(database.db, 9)).toEqual([]);
    });

    it('delivers a NOTIFY sent in a transaction on commit, not before', async () => {
      const seen: string[] = [];
      const unlisten = await database.listen(Channel.WORKER, (p) => seen.push(p));
      try {
        await database.db.transaction(async (tx) => {
          await notify(tx, Channel.WORKER, 'from-tx');
          if (url) {
            // Sent later on another connection but committed first: it must arrive alone.
            await notify(database.db, Channel.WORKER, 'marker');
            await waitFor(() => seen.includes('marker'), 'the marker notification');
          } else {
            for (let i = 0; i < 3; i++) await tx.execute(sql`select 1`);
          }
          expect(seen).not.toContain('from-tx');
        });
        await waitFor(() => seen.includes('from-tx'), 'the committed notification');
      } finally {
        await unlisten();
      }
    });

    it('runs a DAG end to end: chain, XCom fan-in, retry, failure with all_done downstream, per-try logs', async () => {
      const bag = await DagBag.load(FIXTURES);
      expect(bag.errors).toEqual(new Map());
      const result = await runDagLocally(database, bag, bag.get('int_contract'), {});
      const ti = new Map(result.taskInstances.map((t) => [t.taskId, t]));
      const summary = Object.fromEntries(result.taskInstances.map((t) => [t.taskId, `${t.state}/${t.tryNumber}`]));
      expect(summary).toEqual({
        chain_first: 'success/1', chain_second: 'success/1', chain_third: 'success/1', left: 'success/1', right: 'success/1',
        join: 'success/1', flaky: 'success/2', doomed: 'failed/1', cleanup: 'success/1', after_doomed: 'upstream_failed/0',
      });
      expect(result.state).toBe(RunState.FAILED);
      expect(ti.get('doomed')?.error).toBe('Error: doomed always fails');
      const [run] = await queries.dagRuns.getRun(database.db, result.runId, 'int_contract');
      const xcom = (taskId: string, key = 'return_value') => queries.xcom.readXCom(database.db, run.id, taskId, key, -1);
      expect(await xcom('chain_third')).toBe(20);
      expect(await xcom('right', 'extra')).toBe('pushed by right');
      expect(await xcom('join')).toEqual({ sum: 6, extra: 'pushed by right' });
      expect(await xcom('flaky')).toBe('ok on try 2');
      expect(await xcom('cleanup')).toBe('cleaned up');
      expect(await xcom('after_doomed')).toBeUndefined();

      const logs = async (taskId: string, tryNumber?: number) => (await queries.logs.readLogs(database.db, ti.get(taskId)!.id, tryNumber)).map((l) => `${l.level} ${l.message}`);
      const try1 = await logs('flaky', 1);
      expect(try1).toEqual(expect.arrayContaining(['info flaky console line, try 1', 'info flaky context line, try 1']));
      expect(try1.some((l) => l.startsWith('error') && l.includes('transient failure on the first try'))).toBe(true);
      const try2 = await logs('flaky', 2);
      expect(try2).toEqual(['info flaky console line, try 2', 'info flaky context line, try 2']);
      expect(await logs('chain_first')).toContain('info chain_first says hello from a thread');
      expect(await logs('chain_second')).toContain('info chain_second got 1');
      expect((await logs('doomed', 1)).some((l) => l.includes('doomed always fails'))).toBe(true);
      const history = await database.rows<{ try_number: number; state: string }>(sql`select try_number, state from task_instance_history where ti_id = ${ti.get('flaky')!.id} order by try_number`);
      expect(history.map((h) => [Number(h.try_number), h.state])).toEqual([[1, 'up_for_retry'], [2, 'success']]);
    });
  });
}
