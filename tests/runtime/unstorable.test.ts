/**
 * PostgreSQL cannot store a NUL character in text or jsonb. A task producing one must fail on
 * its own with an error naming the value, or (for logs and error messages, which are kept) have
 * it escaped; it must never fail the batched write that carries other TIs' results, which
 * would retry forever and hold every TI in that batch.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { DagBag, queries, type Database } from '../../core/index.ts';
import { runDagLocally } from '../../cli/local-run.ts';
import { drivers } from '../helpers/pg.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/unstorable', import.meta.url));

for (const driver of drivers) {
  describe.skipIf(!driver.available)(`values PostgreSQL cannot store (${driver.name})`, () => {
    let database: Database;
    let cleanup: () => Promise<void>;
    beforeEach(async () => { ({ database, cleanup } = await driver.open()); });
    afterEach(() => cleanup());

    it('fails only the task that produced them, naming where, and escapes them in logs and errors', async () => {
      const bag = await DagBag.load(FIXTURE);
      const result = await runDagLocally(database, bag, bag.get('unstorable'), {});
      const tis = new Map(result.taskInstances.map((t) => [t.taskId, t]));
      expect(Object.fromEntries([...tis].map(([id, t]) => [id, t.state]))).toEqual({
        returns_nul: 'failed', pushes_nul: 'failed', defers_nul: 'failed', logs_nul: 'success', throws_nul: 'failed', fine: 'success',
      });
      expect(tis.get('returns_nul')?.error).toContain('NUL character (\\u0000) at $');
      expect(tis.get('pushes_nul')?.error).toContain('at xcom_push("bad").text');
      expect(tis.get('defers_nul')?.error).toContain('at defer() kwargs.note');
      expect(tis.get('throws_nul')?.error).toBe('Error: bad\\u0000message');

      const [run] = await queries.dagRuns.getRun(database.db, result.runId, 'unstorable');
      expect(await queries.xcom.readXCom(database.db, run.id, 'fine', 'return_value', -1)).toBe(42);
      expect(await queries.xcom.readXCom(database.db, run.id, 'pushes_nul', 'bad', -1)).toBeUndefined();
      const logs = await queries.logs.readLogs(database.db, tis.get('logs_nul')!.id);
      expect(logs.map((l) => l.message)).toContain('before\\u0000after');
    });

    it('fails only the wait whose trigger event holds one, naming it; the other resumes', async () => {
      const bag = await DagBag.load(FIXTURE);
      const result = await runDagLocally(database, bag, bag.get('unstorable_events'), {});
      const tis = new Map(result.taskInstances.map((t) => [t.taskId, t]));
      expect(tis.get('plain_event')?.state).toBe('success');
      expect(tis.get('nul_event')?.state).toBe('failed');
      expect(tis.get('nul_event')?.error).toContain('NUL character (\\u0000) at payload.text');
      const [run] = await queries.dagRuns.getRun(database.db, result.runId, 'unstorable_events');
      expect(await queries.xcom.readXCom(database.db, run.id, 'plain_event', 'return_value', -1)).toEqual({ text: 'plain' });
    });
  });
}
