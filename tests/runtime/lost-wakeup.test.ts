/**
 * A wake-up that arrives while a batch write holds every free slot must not be lost. The
 * write's own claim may read the database before the rows that wake-up announced were
 * committed, and the claim loop it started found no free slot; the worker must claim again
 * once the write is done. Heartbeats are an hour apart here, so no safety net hides a loss.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { Channel, DagBag, Worker, notify, type Database } from '../../core/index.ts';
import { drivers, waitFor } from '../helpers/pg.ts';
import { newRun, startRuns, syncDags, tiMap } from '../helpers/int-db.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/worker-wake', import.meta.url));

for (const driver of drivers) {
  describe.skipIf(!driver.available)(`worker wake-ups during a batch write (${driver.name})`, () => {
    let database: Database;
    let cleanup: () => Promise<void>;
    beforeEach(async () => { ({ database, cleanup } = await driver.open()); });
    afterEach(async () => { await cleanup(); });

    it('claims a TI announced while the batch write that freed the only slot was in flight', async () => {
      const bag = await DagBag.load(FIXTURE);
      const dag = bag.get('wake');
      await syncDags(database, [dag]);

      // Hold the worker's batch write after its transaction (and its claim) committed.
      let release!: () => void;
      const held = new Promise<void>((r) => { release = r; });
      let entered!: () => void;
      const writeHeld = new Promise<void>((r) => { entered = r; });
      const gated: Database = {
        ...database,
        async pipelined(fn) {
          const result = await database.pipelined(fn);
          entered();
          await held;
          return result;
        },
      };
      const worker = await Worker.create({ database: gated, dagBag: bag, slots: 1, heartbeatMs: 3_600_000, log: () => {} });
      let wakes = 0;
      const wake = worker.wake.bind(worker);
      worker.wake = () => { wakes++; wake(); };
      try {
        const first = await newRun(database, dag, new Date(Date.UTC(2024, 0, 1)));
        await startRuns(database, dag);
        await notify(database.db, Channel.WORKER);
        await writeHeld;
        expect((await tiMap(database, first)).get('one')?.state).toBe('success');

        // A second run's TI becomes claimable and is announced while the write is held.
        const second = await newRun(database, dag, new Date(Date.UTC(2024, 0, 2)));
        await startRuns(database, dag);
        const before = wakes;
        await notify(database.db, Channel.WORKER);
        await waitFor(() => wakes > before, 'the worker to receive the NOTIFY', 30_000);
        expect((await tiMap(database, second)).get('one')?.state).toBe('scheduled');

        release();
        await waitFor(async () => (await tiMap(database, second)).get('one')?.state === 'success', 'the second run\'s TI to be claimed and run', 30_000);
      } finally {
        release();
        await worker.stop();
      }
    });
  });
}
