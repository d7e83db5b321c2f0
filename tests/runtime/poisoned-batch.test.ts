/**
 * One outcome the database refuses must not wedge the batch it travels in. A CHECK constraint
 * added by the test refuses one task's XCom (worker batch) and one trigger's event (triggerer
 * batch); five outcomes finish together. The refused one fails its TI with the database's
 * message, and the other four are written at once. Without the split, the whole batch would be
 * retried forever and none of the five would finish.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { DagBag, Worker, queries, triggerDagRun, type Database } from '../../core/index.ts';
import { Scheduler } from '../../scheduler/index.ts';
import { Triggerer } from '../../triggerer/index.ts';
import { drivers, waitFor } from '../helpers/pg.ts';
import { count, tiMap } from '../helpers/int-db.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/poison', import.meta.url));
const holder = globalThis as { poisonGate?: Promise<void> };
const FINISHED = ['success', 'failed'];

for (const driver of drivers) {
  describe.skipIf(!driver.available)(`a refused outcome in a batch (${driver.name})`, () => {
    let database: Database;
    let cleanup: () => Promise<void>;
    let bag: DagBag;
    let scheduler: Scheduler;
    let worker: Worker;
    let triggerer: Triggerer;
    let open: () => void;
    const logs: string[] = [];

    beforeEach(async () => {
      ({ database, cleanup } = await driver.open());
      holder.poisonGate = new Promise<void>((r) => { open = r; });
      bag = await DagBag.load(FIXTURE);
      scheduler = await Scheduler.create({ database, dagBag: bag, watchFiles: false, createScheduledRuns: false, zombieThresholdMs: 3_600_000, log: (m) => logs.push(m) });
      await scheduler.wake();
      worker = await Worker.create({ database, dagBag: bag, slots: 8, log: (m) => logs.push(`[worker] ${m}`) });
      triggerer = await Triggerer.create({ database, log: (m) => logs.push(`[triggerer] ${m}`) });
    });
    afterEach(async () => {
      open();
      delete holder.poisonGate;
      // Bounded: a batch that can never be written would make stop() wait forever.
      const bounded = (p: Promise<void>) => Promise.race([p, new Promise<void>((r) => setTimeout(r, 10_000).unref())]);
      await bounded(triggerer.stop());
      await bounded(worker.stop());
      await bounded(scheduler.stop());
      await cleanup();
      logs.length = 0;
    });

    async function finished(runPk: number) {
      await waitFor(async () => [...(await tiMap(database, runPk)).values()].every((t) => FINISHED.includes(t.state)),
        'all five TIs to finish', 30_000).catch((err) => { throw new Error(`${(err as Error).message}\n${logs.join('\n')}`); });
      return tiMap(database, runPk);
    }

    it('fails the TI whose XCom the database refuses and records the other results of its batch', async () => {
      await database.db.execute(sql`alter table xcom add constraint no_poison_key check (key <> 'poison')`);
      const { runPk } = await triggerDagRun(database, bag.get('poison_results'));
      await waitFor(async () => (await count(database, sql`select count(*) as n from task_instances where run_pk = ${runPk} and state = 'running'`)) === 5, 'all five running');
      open();
      const tis = await finished(runPk);
      expect(tis.get('bad')?.state).toBe('failed');
      expect(tis.get('bad')?.error).toMatch(/^ResultNotStoredError: the database refused what poison_results\.bad \(run \S+\) produced in try 1 \(it ended success\): .*no_poison_key/);
      for (const name of ['a', 'b', 'c', 'd']) {
        expect(tis.get(name)?.state, name).toBe('success');
        expect(await queries.xcom.readXCom(database.db, runPk, name, 'return_value', -1)).toBe(name);
        expect(await queries.xcom.readXCom(database.db, runPk, name, 'fine', -1)).toBe(name);
      }
      expect(await count(database, sql`select count(*) as n from xcom where run_pk = ${runPk} and task_id = 'bad'`)).toBe(0);
    });

    it('fails the wait whose trigger event the database refuses and resumes the others', async () => {
      await database.db.execute(sql`alter table task_instances add constraint no_poison_event
        check (next_kwargs is null or (next_kwargs -> 'event' ->> 'value') is distinct from 'poison')`);
      const { runPk } = await triggerDagRun(database, bag.get('poison_events'));
      await waitFor(() => triggerer.runs.size === 5, 'the triggerer to run all five triggers');
      open();
      const tis = await finished(runPk);
      expect(tis.get('bad')?.state).toBe('failed');
      expect(tis.get('bad')?.error).toMatch(/^TaskFailedNoRetry: the database refused what trigger #\d+ \(test\.PoisonGateTrigger\) produced: .*no_poison_event/);
      for (const name of ['a', 'b', 'c', 'd']) {
        expect(tis.get(name)?.state, name).toBe('success');
        expect(await queries.xcom.readXCom(database.db, runPk, name, 'return_value', -1)).toBe(name);
      }
    });
  });
}
