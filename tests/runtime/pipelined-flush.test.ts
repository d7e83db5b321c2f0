/**
 * The worker writes a batch and claims the next TIs as one pipelined transaction. That
 * transaction sends its XCom and log writes before it learns whether every finish applied, so
 * a TI taken away from the worker meanwhile (a zombie reaped while its task still ran) must
 * roll the whole pipeline back; the worker's second attempt, which waits for the finish before
 * the rest, then records the other TIs and leaves the reaped one alone.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { DagBag, Worker, queries, type Database } from '../../core/index.ts';
import { drivers, waitFor } from '../helpers/pg.ts';
import { count, newRun, startRuns, syncDags, tiMap } from '../helpers/int-db.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/worker-pipeline', import.meta.url));
const holder = globalThis as { pipelineGate?: Promise<void> };

for (const driver of drivers) {
  describe.skipIf(!driver.available)(`pipelined batch write (${driver.name})`, () => {
    let database: Database;
    let cleanup: () => Promise<void>;
    beforeEach(async () => { ({ database, cleanup } = await driver.open()); });
    afterEach(async () => {
      delete holder.pipelineGate;
      await cleanup();
    });

    it('rolls back when a TI in the batch is no longer the worker\'s, then writes the rest', async () => {
      let open!: () => void;
      holder.pipelineGate = new Promise<void>((r) => { open = r; });
      const bag = await DagBag.load(FIXTURE);
      const dag = bag.get('pipeline_gate');
      await syncDags(database, [dag]);
      const runPk = await newRun(database, dag, new Date(Date.UTC(2024, 0, 1)));
      await startRuns(database, dag);
      const worker = await Worker.create({ database, dagBag: bag, slots: 4, heartbeatMs: 60_000, log: () => {} });
      try {
        await waitFor(async () => (await count(database, sql`select count(*) as n from task_instances where run_pk = ${runPk} and state = 'running'`)) === 2, 'both TIs running');
        // What the zombie reaper does to a TI whose worker stopped heartbeating.
        await database.db.execute(sql`update task_instances set state = 'up_for_retry', worker_id = null, next_retry_at = now() + interval '1 hour'
          where run_pk = ${runPk} and task_id = 'reaped'`);
        open();
        await waitFor(async () => (await tiMap(database, runPk)).get('kept')?.state === 'success', 'kept to succeed', 30_000);
        await waitFor(() => worker.completed === 2, 'the worker to account for both TIs', 30_000);
      } finally {
        open();
        await worker.stop();
      }
      const tis = await tiMap(database, runPk);
      expect(tis.get('reaped')?.state).toBe('up_for_retry');
      expect(await queries.xcom.readXCom(database.db, runPk, 'kept', 'return_value', -1)).toBe('kept');
      expect(await count(database, sql`select count(*) as n from xcom where run_pk = ${runPk} and task_id = 'reaped'`)).toBe(0);
      expect(await count(database, sql`select count(*) as n from task_instance_history h join task_instances t on t.id = h.ti_id
        where t.run_pk = ${runPk} and t.task_id = 'reaped'`)).toBe(0);
    });
  });
}
