/**
 * The scheduler's and the worker's /metrics, served over HTTP by a scheduler and a worker in
 * this process: TIs by state and pool slots while a run is half-way, then claims, batches,
 * scheduling delays, run durations and DAG parse times once it has finished.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { DagBag, Worker, queries, triggerDagRun, type Database } from '../../core/index.ts';
import { Scheduler } from '../../scheduler/index.ts';
import { drivers, waitFor } from '../helpers/pg.ts';
import { freePort } from '../helpers/ports.ts';
import { sample, scrape } from '../helpers/metrics.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/metrics', import.meta.url));
const holder = globalThis as { metricsGate?: Promise<void> };

for (const driver of drivers) {
  describe.skipIf(!driver.available)(`scheduler and worker metrics (${driver.name})`, () => {
    let database: Database;
    let cleanup: () => Promise<void>;
    beforeEach(async () => { ({ database, cleanup } = await driver.open()); });
    afterEach(async () => {
      delete holder.metricsGate;
      await cleanup();
    });

    it('serves TIs by state, pool slots, claims, batches, delays, run durations and parse times', async () => {
      let open!: () => void;
      holder.metricsGate = new Promise<void>((r) => { open = r; });
      const bag = await DagBag.load(FIXTURE);
      const dag = bag.get('metrics_chain');
      await database.db.transaction((tx) => queries.dags.syncDagBag(tx, bag.dags.values(), bag.errors));
      const [schedulerPort, workerPort] = [await freePort(), await freePort()];
      const quiet = () => {};
      const scheduler = await Scheduler.create({ database, dagBag: bag, watchFiles: false, createScheduledRuns: false, log: quiet, metricsPort: schedulerPort });
      const worker = await Worker.create({ database, dagBag: bag, slots: 4, prefetch: 0, heartbeatMs: 60_000, log: quiet, metricsPort: workerPort });
      try {
        const { runPk } = await triggerDagRun(database, dag, {});
        await waitFor(async () => (await queries.dagRuns.runTaskInstances(database.db, runPk)).some((t) => t.taskId === 'extract' && t.state === 'running'), 'extract to run');

        const midway = await scrape(schedulerPort);
        expect(sample(midway, 'updraft_task_instances', { state: 'running' })).toBe(1);
        expect(sample(midway, 'updraft_task_instances', { state: 'none' })).toBe(2);
        expect(sample(midway, 'updraft_task_instances', { state: 'scheduled' })).toBe(0);
        expect(sample(midway, 'updraft_task_instances', { state: 'success' })).toBeUndefined();
        expect(sample(midway, 'updraft_pool_slots', { pool: 'default_pool' })).toBe(128);
        expect(sample(midway, 'updraft_pool_slots_used', { pool: 'default_pool' })).toBe(1);
        expect(sample(midway, 'updraft_pool_slots_open', { pool: 'default_pool' })).toBe(127);
        expect(sample(await scrape(workerPort), 'updraft_worker_slots_busy')).toBe(1);

        open();
        const run = await waitFor(async () => {
          const r = await queries.dagRuns.getRunByPk(database.db, runPk);
          return r?.state === 'success' ? r : null;
        }, 'the run to succeed');
        const ran = run.endDate!.getTime() - run.startDate!.getTime();

        const w = await scrape(workerPort);
        expect(sample(w, 'updraft_worker_slots')).toBe(4);
        expect(sample(w, 'updraft_worker_claim_batch_size_sum')).toBeGreaterThanOrEqual(3);
        expect(sample(w, 'updraft_worker_claim_seconds_count')).toBeGreaterThanOrEqual(1);
        expect(sample(w, 'updraft_worker_finish_batch_size_sum')).toBe(3);
        expect(sample(w, 'updraft_worker_finish_batch_seconds_count')).toBeGreaterThanOrEqual(1);
        expect(sample(w, 'updraft_ti_scheduling_delay_seconds_count')).toBe(3);
        // Each TI waited less than the whole run took.
        expect(sample(w, 'updraft_ti_scheduling_delay_seconds_sum')).toBeLessThan(3 * ran / 1000);
        expect(sample(w, 'updraft_worker_process_cpu_user_seconds_total')).toBeGreaterThan(0);

        // Process-wide metrics are on both endpoints.
        const s = await scrape(schedulerPort);
        for (const text of [w, s]) {
          expect(sample(text, 'updraft_dag_run_duration_seconds_count', { state: 'success' })).toBeGreaterThanOrEqual(1);
          expect(sample(text, 'updraft_dag_file_parse_seconds_count')).toBeGreaterThanOrEqual(1);
          expect(sample(text, 'updraft_dagbag_import_errors')).toBe(0);
        }
        expect(sample(s, 'updraft_scheduler_process_cpu_user_seconds_total')).toBeGreaterThan(0);
        expect(sample(s, 'updraft_worker_slots')).toBeUndefined();
        expect((await fetch(`http://127.0.0.1:${schedulerPort}/other`)).status).toBe(404);
      } finally {
        open();
        await worker.stop();
        await scheduler.stop();
      }
      // Stopping closes the endpoints.
      await expect(fetch(`http://127.0.0.1:${workerPort}/metrics`)).rejects.toThrow();
      await expect(fetch(`http://127.0.0.1:${schedulerPort}/metrics`)).rejects.toThrow();
    });

    it('says which port is taken when the endpoint cannot listen', async () => {
      const bag = await DagBag.load(FIXTURE);
      const port = await freePort();
      const first = await Scheduler.create({ database, dagBag: bag, watchFiles: false, createScheduledRuns: false, log: () => {}, metricsPort: port });
      try {
        await expect(Worker.create({ database, dagBag: bag, log: () => {}, metricsPort: port }))
          .rejects.toThrow(`the worker's metrics endpoint could not listen on 127.0.0.1:${port}: listen EADDRINUSE`);
      } finally {
        await first.stop();
      }
    });
  });
}
