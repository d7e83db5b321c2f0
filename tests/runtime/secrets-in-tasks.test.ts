/**
 * Connections and variables as tasks and triggers see them, with the masking that follows:
 * a secret a task prints (from the event loop, or from a sync task in a worker thread), a
 * secret in a failure message, and a secret a trigger logs while its task waits all reach
 * the database as ***. Templated fields render before execute, from a .sql file too, and are
 * stored per TI. On both drivers, with the connection in the environment and the variable in
 * the database (sealed).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import {
  DagBag, queries, masker, Secrets, EnvSecretsBackend, DatabaseSecretsBackend, SecretStore, SecretBox, type Database,
} from '../../core/index.ts';
import { runDagLocally } from '../../cli/local-run.ts';
import { drivers } from '../helpers/pg.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/secrets', import.meta.url));
const PASSWORD = 'pa/ss@w0rd:with#specials';
const TOKEN = 'tok_9f8e7d6c5b4a';
const DB_PASSWORD = 'variable-secret-8812';
const ENV = {
  UPDRAFT_CONN_WAREHOUSE: `postgres://etl:${encodeURIComponent(PASSWORD)}@wh.internal:5432/dw?api_token=${TOKEN}`,
};

for (const driver of drivers) {
  describe.skipIf(!driver.available)(`connections, variables, masking and templates in tasks (${driver.name})`, () => {
    let database: Database;
    let cleanup: () => Promise<void>;
    let keyDir: string;
    let secrets: Secrets;
    let store: SecretStore;

    beforeEach(async () => {
      masker.clear();
      ({ database, cleanup } = await driver.open());
      keyDir = mkdtempSync(path.join(tmpdir(), 'updraft-key-'));
      store = new SecretStore(database, SecretBox.withKeyFile(path.join(keyDir, 'secret.key'), {}));
      secrets = new Secrets([new EnvSecretsBackend(ENV), new DatabaseSecretsBackend(store)]);
      await store.putVariable('db_password', DB_PASSWORD);
      await store.putVariable('target_table', 'daily_events');
      await store.putVariable('settings', JSON.stringify({ limit: 250 }));
    });
    afterEach(async () => {
      await cleanup();
      rmSync(keyDir, { recursive: true, force: true });
    });

    async function logsOf(tiId: number) {
      return queries.logs.readLogs(database.db, tiId);
    }

    it('masks secrets in task logs, sync threads, failures and trigger logs, and renders templates', async () => {
      const bag = await DagBag.load(FIXTURE);
      const result = await runDagLocally(database, bag, bag.get('secrets'), {}, { secrets });
      const tis = new Map(result.taskInstances.map((t) => [t.taskId, t]));
      expect(Object.fromEntries([...tis].map(([id, t]) => [id, t.state]))).toEqual({
        async_reads: 'success', sync_reads: 'success', fails_with_secret: 'failed', waits_on_trigger: 'success', templated: 'success',
      });

      const allText = async (taskId: string) => (await logsOf(tis.get(taskId)!.id)).map((l) => l.message).join('\n');
      const asyncLog = await allText('async_reads');
      expect(asyncLog).toContain('connecting as etl with ***');
      expect(asyncLog).toContain('api token ***');
      expect(asyncLog).toContain('variable says ***');

      // A sync task, in a worker thread, read the connection with a blocking call and printed it.
      const syncLog = await allText('sync_reads');
      expect(syncLog).toContain('sync thread sees *** and ***');

      const failed = tis.get('fails_with_secret')!;
      expect(failed.error).toBe('Error: login refused for password ***');
      const history = await database.rows<{ error: string | null }>(sql`select error from task_instance_history where ti_id = ${failed.id}`);
      expect(history.map((h) => h.error)).toEqual(['Error: login refused for password ***']);
      expect(await allText('fails_with_secret')).toContain('login refused for password ***');

      // The trigger's line is in the waiting TI's log, marked as the triggerer's, masked.
      const triggerLines = (await logsOf(tis.get('waits_on_trigger')!.id)).filter((l) => l.source === 'triggerer');
      expect(triggerLines.map((l) => l.message)).toEqual(['[test.LoggingTrigger] retrying wh.internal with password ***']);

      for (const taskId of tis.keys()) {
        for (const secret of [PASSWORD, TOKEN, DB_PASSWORD, encodeURIComponent(PASSWORD)]) expect(await allText(taskId)).not.toContain(secret);
      }

      // Templated fields: rendered before execute (one from a .sql file with an include), and stored.
      const [run] = await queries.dagRuns.getRun(database.db, result.runId, 'secrets');
      const day = run.logicalDate.toISOString().slice(0, 10);
      const value = await queries.xcom.readXCom(database.db, run.id, 'templated', 'return_value', -1) as Record<string, unknown>;
      expect(value.target).toBe(`acme.daily_events_${day.replace(/-/g, '')}`);
      expect(value.settings).toEqual({ limit: '250', host: 'wh.internal', labels: ['secrets', 'templated'] });
      expect(value.sql).toContain('-- secrets.templated try 1');
      expect(value.sql).toContain(`select * from events\nwhere day = '${day}' and run = '${result.runId}'`);
      const rendered = await queries.rendered.readRendered(database.db, tis.get('templated')!.id);
      expect(rendered?.tryNumber).toBe(1);
      expect(rendered?.fields).toEqual(value);
      expect(await allText('templated')).toContain('rendered templates: {"sql":"-- secrets.templated try 1');
    });

    it('keeps variable values sealed at rest', async () => {
      const rows = await database.rows<{ key: string; val: string }>(sql`select key, val from variables`);
      expect(rows).toHaveLength(3);
      for (const r of rows) {
        expect(r.val).toMatch(/^enc:v1:[0-9a-f]{8}:/);
        expect(r.val).not.toContain(DB_PASSWORD);
      }
      expect((await store.getVariable('db_password'))?.value).toBe(DB_PASSWORD);
    });
  });
}
