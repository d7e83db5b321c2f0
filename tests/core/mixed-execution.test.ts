/**
 * The mixed sync/async example: the CPU-bound sync task must run in a worker thread and the
 * 100 async tasks on the worker's own loop, so the sieve cannot stall them.
 */
import { describe, it, expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import { openDatabase, DagBag, queries } from '../../core/index.ts';
import { runDagLocally } from '../../cli/local-run.ts';

describe('dags/mixed-sync-async.ts', () => {
  it('runs the sync task off the loop and every async task on it', async () => {
    const database = await openDatabase({ dataDir: 'memory://' });
    try {
      await database.migrate();
      const bag = await DagBag.load(fileURLToPath(new URL('../../dags', import.meta.url)));
      const res = await runDagLocally(database, bag, bag.get('mixed_sync_async'), {});
      expect(res.state).toBe('success');
      const report = res.taskInstances.find((t) => t.taskId === 'report')!;
      const run = (await queries.dagRuns.getRun(database.db, res.runId, 'mixed_sync_async'))[0];
      const value = await queries.xcom.readXCom(database.db, run.id, report.taskId, 'return_value', -1) as { syncThread: number; asyncThreads: number[]; primes: number };
      expect(value.primes).toBe(216_816);
      expect(value.syncThread).toBeGreaterThan(0);
      expect(value.asyncThreads).toEqual([0]);
    } finally {
      await database.close();
    }
  });
});
