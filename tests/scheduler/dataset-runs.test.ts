/**
 * Dataset-triggered runs, on PGlite and PostgreSQL: all(), any() and nested conditions over the
 * events since a DAG's last such run, each run recording the events that triggered it and
 * consuming them, paused DAGs, schedule changes, the real scheduler reacting to a producer's
 * events, and (on PostgreSQL) two schedulers racing for the same events.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { all, any, dag, dataset, DagBag, openDatabase, queries, RunState, RunType, task, type Database } from '../../core/index.ts';
import { Scheduler } from '../../scheduler/index.ts';
import { createDatasetTriggeredRuns } from '../../scheduler/dataset-runs.ts';
import { drivers, waitFor } from '../helpers/pg.ts';
import { count, syncDags } from '../helpers/int-db.ts';
import { DATASET_FIXTURES, Services, ledger, pendingByDag, settled } from '../helpers/datasets.ts';

const ORDERS = 's3://warehouse/orders';
const CUSTOMERS = 's3://warehouse/customers';
const REPORT = 'file:///reports/daily.csv';
const [orders, customers, report] = [ORDERS, CUSTOMERS, REPORT].map(dataset);
const noop = async () => null;

const both = dag({ dagId: 'c_all', schedule: [orders, customers] }, () => { task('t', noop)(); });
const either = dag({ dagId: 'c_any', schedule: any(orders, customers) }, () => { task('t', noop)(); });
const nested = dag({ dagId: 'c_nested', schedule: any(all(orders, customers), report) }, () => { task('t', noop)(); });
const consumers = [both, either, nested];

for (const driver of drivers) {
  describe.skipIf(!driver.available)(`dataset-triggered runs (${driver.name})`, () => {
    let database: Database;
    let url: string | null;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ database, url, cleanup } = await driver.open());
      await syncDags(database, consumers);
    });
    afterEach(() => cleanup());

    async function emit(uri: string, source: { dagId: string; runId: string } = { dagId: 'producer', runId: 'manual__x' }, db = database): Promise<number> {
      await queries.datasets.writeDatasetEvents(db.db, [{ uri, extra: {}, ...source, taskId: 't', mapIndex: -1, timestamp: new Date() }]);
      const [row] = await db.rows<{ id: number }>(sql`select max(id) as id from dataset_events`);
      return Number(row.id);
    }

    const pass = (db = database) => createDatasetTriggeredRuns(db, consumers);
    const runsOf = async (dagId: string) => (await queries.dagRuns.listRuns(database.db, dagId, 500)).sort((a, b) => a.id - b.id);
    const linked = async (runPk: number) => (await queries.datasets.eventsOfRun(database.db, runPk)).map((e) => e.id);

    it('creates a run once the condition holds, recording and consuming the events since the last one', async () => {
      const o1 = await emit(ORDERS);
      expect(await pass()).toBe(1);
      expect(await runsOf('c_all')).toEqual([]);
      const [anyRun] = await runsOf('c_any');
      expect(anyRun).toMatchObject({ runType: RunType.DATASET_TRIGGERED, state: RunState.QUEUED, conf: {} });
      expect(anyRun.runId).toBe(`dataset_triggered__${anyRun.logicalDate.toISOString()}`);
      expect(Math.abs(anyRun.logicalDate.getTime() - Date.now())).toBeLessThan(60_000);
      expect(await linked(anyRun.id)).toEqual([o1]);

      const c1 = await emit(CUSTOMERS);
      expect(await pass()).toBe(3);
      expect(await linked((await runsOf('c_all'))[0].id)).toEqual([o1, c1]);
      expect(await linked((await runsOf('c_any'))[1].id)).toEqual([c1]);
      expect(await linked((await runsOf('c_nested'))[0].id)).toEqual([o1, c1]);
      expect(await pendingByDag(database)).toEqual({});
      // Nothing new: nothing created, however often it is asked.
      expect(await pass()).toBe(0);

      // Two events before the next pass make one run with both; all() waits for customers again.
      const [o2, o3] = [await emit(ORDERS), await emit(ORDERS)];
      expect(await pass()).toBe(1);
      expect(await linked((await runsOf('c_any'))[2].id)).toEqual([o2, o3]);
      expect(await runsOf('c_all')).toHaveLength(1);
      expect(await pendingByDag(database)).toEqual({ c_all: [ORDERS, ORDERS], c_nested: [ORDERS, ORDERS] });
      const r1 = await emit(REPORT);
      expect(await pass()).toBe(1);
      expect(await linked((await runsOf('c_nested'))[1].id)).toEqual([o2, o3, r1]);
    });

    it('takes the data interval from the runs that produced the events', async () => {
      const start = new Date('2024-01-01T00:00:00Z');
      const end = new Date('2024-01-02T00:00:00Z');
      await queries.dagRuns.createRun(database.db, {
        dagId: 'producer', runId: 'scheduled__1', runType: RunType.SCHEDULED, logicalDate: start, dataIntervalStart: start, dataIntervalEnd: end, conf: {},
      });
      await emit(ORDERS, { dagId: 'producer', runId: 'scheduled__1' });
      const before = Date.now();
      await emit(CUSTOMERS, { dagId: 'elsewhere', runId: 'none' });
      await pass();
      const [run] = await runsOf('c_all');
      expect(run.dataIntervalStart).toEqual(start);
      expect(run.dataIntervalEnd!.getTime()).toBeGreaterThanOrEqual(before - 1000);
    });

    it('leaves a paused DAG alone: events meanwhile are not queued for it, earlier ones wait', async () => {
      await queries.dags.setPaused(database.db, 'c_any', true);
      await emit(ORDERS);
      expect(Object.keys(await pendingByDag(database))).toEqual(['c_all', 'c_nested']);
      await queries.dags.setPaused(database.db, 'c_any', false);
      expect(await pass()).toBe(0);

      const c1 = await emit(CUSTOMERS);
      await queries.dags.setPaused(database.db, 'c_any', true);
      await queries.dags.setPaused(database.db, 'c_all', true);
      expect(await pass()).toBe(1);
      expect(await runsOf('c_any')).toEqual([]);
      expect(await runsOf('c_all')).toEqual([]);
      expect((await pendingByDag(database)).c_any).toEqual([CUSTOMERS]);
      await queries.dags.setPaused(database.db, 'c_any', false);
      expect(await pass()).toBe(1);
      expect(await linked((await runsOf('c_any'))[0].id)).toEqual([c1]);
    });

    it('drops pending events of a dataset a DAG is no longer scheduled on', async () => {
      await emit(CUSTOMERS);
      const ordersOnly = dag({ dagId: 'c_all', schedule: orders }, () => { task('t', noop)(); });
      await syncDags(database, [ordersOnly, either, nested]);
      expect(Object.keys(await pendingByDag(database))).toEqual(['c_any', 'c_nested']);
      expect(await count(database, sql`select count(*) as n from dag_schedule_datasets where dag_id = 'c_all'`)).toBe(1);
    });

    /** No event consumed twice, none lost, and no dataset-triggered run without events. */
    async function expectConsistent(dagIds: string[], afterId = 0) {
      for (const dagId of dagIds) {
        const { events, accounted } = await ledger(database, dagId, afterId);
        expect(events.length, dagId).toBeGreaterThan(0);
        expect(accounted, dagId).toEqual(events);
      }
      expect(await count(database, sql`select count(*) as n from dag_runs r where r.run_type = 'dataset_triggered'
        and not exists (select 1 from dag_run_dataset_events l where l.run_pk = r.id)`)).toBe(0);
    }

    it('creates the runs from a producer\'s events in a running scheduler, and runs them', async () => {
      const services = await Services.start(database, { createScheduledRuns: true });
      const consumerIds = ['ds_all', 'ds_any', 'ds_nested'];
      try {
        await services.trigger('ds_produce');
        await waitFor(async () => {
          const runs = await database.rows<{ dag_id: string; state: string }>(sql`select dag_id, state from dag_runs`);
          return consumerIds.every((id) => runs.some((r) => r.dag_id === id)) && runs.every((r) => r.state === RunState.SUCCESS)
            && await settled(database, services.bag.dags.values());
        }, 'a successful run of every consumer', 60_000).catch((err) => { throw new Error(`${(err as Error).message}\n${services.log.join('\n')}`); });
      } finally {
        await services.stop();
      }
      await expectConsistent(consumerIds);
    });

    it.skipIf(driver.name !== 'postgres')('never lets two schedulers create a run from the same events', async () => {
      const other = await openDatabase({ databaseUrl: url });
      let headToHead = 0;
      try {
        // Head to head: both decide the same DAGs at the same moment, 25 times over.
        for (let i = 0; i < 25; i++) {
          headToHead = await emit(ORDERS);
          const made = await Promise.all([pass(), pass(other)]);
          expect(made[0] + made[1], `round ${i}`).toBe(1);
        }
        // Two real schedulers over the fixture DAGs, woken by the NOTIFYs of events written from both connections.
        const bag = await DagBag.load(DATASET_FIXTURES);
        const log: string[] = [];
        const schedulers = await Promise.all([database, other].map((db) => Scheduler.create({ database: db, dagBag: bag, watchFiles: false, zombieThresholdMs: 3_600_000, log: (m) => log.push(m) })));
        try {
          await Promise.all(schedulers.map((s) => s.wake()));
          for (let i = 0; i < 60; i++) await emit([ORDERS, CUSTOMERS, REPORT][i % 3], undefined, i % 2 ? other : database);
          await waitFor(async () => (await pendingByDag(database)).ds_any === undefined && await settled(database, bag.dags.values()),
            'the schedulers to consume every event they can', 60_000)
            .catch((err) => { throw new Error(`${(err as Error).message}\n${log.join('\n')}`); });
        } finally {
          await Promise.all(schedulers.map((s) => s.stop()));
        }
      } finally {
        await other.close();
      }
      // Every event of phase two reached every DAG scheduled on its dataset exactly once.
      await expectConsistent(['ds_all', 'ds_any', 'ds_nested'], headToHead);
    });
  });
}
