/**
 * Dataset events written by the worker (and by the triggerer for a task its trigger ends), on
 * PGlite and PostgreSQL: one per declared outlet of a successful TI, events added at run time
 * (also from a sync task's thread, and across a deferral), none for a failed try, and always in
 * the transaction that records the TI's success: refusing either refuses both.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { Channel, RunState, queries, type Database } from '../../core/index.ts';
import { drivers, waitFor } from '../helpers/pg.ts';
import { count, tiMap } from '../helpers/int-db.ts';
import { Services, eventRows, pendingByDag } from '../helpers/datasets.ts';

const ORDERS = 's3://warehouse/orders';
const CUSTOMERS = 's3://warehouse/customers';
const REPORT = 'file:///reports/daily.csv';

for (const driver of drivers) {
  describe.skipIf(!driver.available)(`dataset events (${driver.name})`, () => {
    let database: Database;
    let cleanup: () => Promise<void>;
    let services: Services;

    beforeEach(async () => {
      ({ database, cleanup } = await driver.open());
      services = await Services.start(database);
    });
    afterEach(async () => {
      await services.stop();
      await cleanup();
    });

    async function run(dagId: string): Promise<number> {
      const { runPk } = await services.trigger(dagId);
      await waitFor(async () => {
        const r = await queries.dagRuns.getRunByPk(database.db, runPk);
        return r?.state === RunState.SUCCESS || r?.state === RunState.FAILED;
      }, `${dagId} to finish`, 60_000).catch((err) => { throw new Error(`${(err as Error).message}\n${services.log.join('\n')}`); });
      return runPk;
    }

    const byTask = (task: string) => sql`e.source_task_id = ${task}`;

    it('writes one event per declared outlet, and the events a task adds at run time', async () => {
      const runPk = await run('ds_produce');
      expect((await queries.dagRuns.runTaskInstances(database.db, runPk)).map((t) => `${t.taskId}[${t.mapIndex}] ${t.state}`).sort()).toEqual([
        'customers[-1] success', 'each[0] success', 'each[1] success', 'each[2] success', 'orders[-1] success', 'partitions[-1] success', 'publish[-1] success',
      ]);
      expect(await eventRows(database, byTask('orders'))).toEqual([{ uri: ORDERS, task: 'orders', mapIndex: -1, extra: {} }]);
      // The sync task's own event stands in for its declared outlet's default one.
      expect(await eventRows(database, byTask('customers'))).toEqual([{ uri: CUSTOMERS, task: 'customers', mapIndex: -1, extra: { rows: 3 } }]);
      expect(await eventRows(database, byTask('publish'))).toEqual([{ uri: REPORT, task: 'publish', mapIndex: -1, extra: {} }]);
      expect(await eventRows(database, byTask('partitions'))).toEqual(['2024-01-01', '2024-01-02'].map((day) => (
        { uri: `s3://warehouse/partitions/${day}`, task: 'partitions', mapIndex: -1, extra: { day } })));
      expect((await eventRows(database, byTask('each'))).map((e) => [e.uri, e.mapIndex]).sort()).toEqual([[ORDERS, 0], [ORDERS, 1], [ORDERS, 2]]);
      // Each event carries its run and the TI's end time.
      const [ev] = await database.rows<{ source_dag_id: string; source_run_id: string; timestamp: Date }>(sql`
        select source_dag_id, source_run_id, timestamp from dataset_events where source_task_id = 'orders'`);
      const orders = (await tiMap(database, runPk)).get('orders')!;
      expect([ev.source_dag_id, ev.source_run_id, new Date(ev.timestamp).getTime()]).toEqual(['ds_produce', orders.runId, orders.endDate!.getTime()]);
      // Every DAG scheduled on an updated dataset has the events pending.
      expect(await pendingByDag(database)).toEqual({
        ds_all: [CUSTOMERS, ORDERS, ORDERS, ORDERS, ORDERS],
        ds_any: [CUSTOMERS, ORDERS, ORDERS, ORDERS, ORDERS],
        ds_nested: [REPORT, CUSTOMERS, ORDERS, ORDERS, ORDERS, ORDERS].sort(),
      });
    });

    it('applies outlets given in defaultArgs to operators and function tasks', async () => {
      await run('ds_defaults');
      expect((await eventRows(database)).map((e) => [e.task, e.uri]).sort()).toEqual([['first', REPORT], ['second', REPORT]]);
    });

    it('writes nothing for a failed try, and only the successful retry\'s events', async () => {
      const runPk = await run('ds_failing');
      const tis = await tiMap(database, runPk);
      expect(tis.get('fails')?.state).toBe('failed');
      expect(await eventRows(database, byTask('fails'))).toEqual([]);
      expect([tis.get('flaky')?.state, tis.get('flaky')?.tryNumber]).toEqual(['success', 2]);
      expect(await eventRows(database, byTask('flaky'))).toEqual([
        { uri: ORDERS, task: 'flaky', mapIndex: -1, extra: {} },
        { uri: CUSTOMERS, task: 'flaky', mapIndex: -1, extra: { try: 2 } },
      ]);
      // An extra that is not JSON fails the task at once, whatever its retries.
      expect([tis.get('bad_extra')?.state, tis.get('bad_extra')?.tryNumber]).toEqual(['failed', 1]);
      expect(tis.get('bad_extra')?.error).toBe('InvalidDatasetEventError: task "bad_extra" of DAG "ds_failing": ctx.outletEvents.add(): '
        + `extra for ${REPORT} cannot be stored as JSON: an instance of Date at extra.when`);
      expect(await eventRows(database, byTask('bad_extra'))).toEqual([]);
    });

    it('keeps events added before a deferral for the resume, and records those of a task its trigger ends', async () => {
      const runPk = await run('ds_deferring');
      expect([...(await tiMap(database, runPk)).values()].map((t) => t.state)).toEqual(['success', 'success']);
      expect(await eventRows(database, byTask('resumes'))).toEqual([
        { uri: REPORT, task: 'resumes', mapIndex: -1, extra: {} },
        { uri: ORDERS, task: 'resumes', mapIndex: -1, extra: { before: 'deferral' } },
        { uri: CUSTOMERS, task: 'resumes', mapIndex: -1, extra: { after: 'resume' } },
      ]);
      expect(await eventRows(database, byTask('ended'))).toEqual([
        { uri: REPORT, task: 'ended', mapIndex: -1, extra: {} },
        { uri: CUSTOMERS, task: 'ended', mapIndex: -1, extra: { by: 'trigger' } },
      ]);
    });

    it('writes the events in the transaction that records the success: refusing one refuses both', async () => {
      // The database refuses the XCom of "orders", and the event of "customers".
      await database.db.execute(sql`alter table xcom add constraint no_orders_result check (task_id <> 'orders')`);
      await database.db.execute(sql`alter table dataset_events add constraint no_rows_extra check (not extra ? 'rows')`);
      const runPk = await run('ds_produce');
      const tis = await tiMap(database, runPk);
      for (const id of ['orders', 'customers']) {
        expect(tis.get(id)?.state, id).toBe('failed');
        expect(tis.get(id)?.error, id).toMatch(/^ResultNotStoredError: /);
      }
      expect(await eventRows(database, byTask('orders'))).toEqual([]);
      expect(await count(database, sql`select count(*) as n from xcom where run_pk = ${runPk} and task_id = 'customers'`)).toBe(0);
      expect(await eventRows(database, byTask('publish'))).toHaveLength(1);
    });

    it('queues events for unpaused DAGs only, and tells the schedulers', async () => {
      const notices: string[] = [];
      const unlisten = await database.listen(Channel.SCHEDULER, (p) => notices.push(p));
      try {
        await queries.dags.setPaused(database.db, 'ds_nested', true);
        await run('ds_defaults');
        // Only ds_nested waits for the report, and it is paused.
        expect(await eventRows(database)).toHaveLength(2);
        expect(await pendingByDag(database)).toEqual({});
        await run('ds_produce');
        expect(Object.keys(await pendingByDag(database))).toEqual(['ds_all', 'ds_any']);
        await waitFor(() => notices.includes('datasets'), 'a NOTIFY for the queued events', 10_000);
      } finally {
        await unlisten();
      }
    });
  });
}
