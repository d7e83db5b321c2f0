/**
 * Task and DAG callbacks on in-memory PGlite, services in this process: every task callback
 * kind after a try the worker ran; onExecuteCallback from defaultArgs; a throwing callback
 * logged in the TI's log with the state unchanged; a deferral timeout's failure callback; a
 * zombie's failure and retry callbacks, queued by the scheduler and run by a worker; those of
 * TIs a trigger ended in the triggerer; and a run's success and failure callbacks.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { DagBag, queries, openDatabase, type Database } from '../../core/index.ts';
import { startServices, runToEnd, type Services } from '../helpers/services.ts';
import { runDagLocally } from '../../cli/local-run.ts';
import { waitFor } from '../helpers/pg.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/callbacks', import.meta.url));
const g = globalThis as { callbackEvents?: string[]; releaseZombies?: Promise<void> };

describe('callbacks', () => {
  let database: Database;
  let bag: DagBag;
  let services: Services | undefined;
  let release: () => void = () => {};
  beforeEach(async () => {
    database = await openDatabase({ dataDir: 'memory://' });
    await database.migrate();
    bag = await DagBag.load(FIXTURE);
    g.callbackEvents = [];
    g.releaseZombies = new Promise<void>((r) => { release = r; });
  });
  afterEach(async () => {
    release();
    await services?.stop();
    services = undefined;
    await database.close();
  });

  const events = (taskId: string) => g.callbackEvents!.filter((e) => e.split(':')[1] === taskId);

  it('calls success, retry, failure, skipped and execute callbacks with the context and the error', async () => {
    services = await startServices(database, bag);
    const { ti } = await runToEnd(database, bag.get('task_callbacks'));
    expect(events('ok')).toEqual(['execute:ok:1', 'success:ok:1']);
    expect(events('sync_ok')).toEqual(['execute:sync_ok:1', 'success:sync_ok:1']);
    expect(events('flaky')).toEqual(['execute:flaky:1', 'retry:flaky:1:Error: boom', 'execute:flaky:2', 'failure:flaky:2:Error: boom']);
    expect(events('skips')).toEqual(['execute:skips:1', 'skipped:skips:1']);
    expect([ti('ok').state, ti('flaky').state, ti('skips').state]).toEqual(['success', 'failed', 'skipped']);
  });

  it('logs a callback that throws in the TI\'s log, runs the next one, and leaves the state alone', async () => {
    services = await startServices(database, bag);
    const { ti } = await runToEnd(database, bag.get('task_callbacks'));
    expect(ti('throwing_cb').state).toBe('success');
    expect(events('throwing_cb')).toEqual(['execute:throwing_cb:1', 'success:throwing_cb:1']);
    const logs = await queries.logs.readLogs(database.db, ti('throwing_cb').id, 1);
    const line = logs.find((l) => l.message.includes('onSuccessCallback of task "throwing_cb" failed'));
    expect(line?.level).toBe('error');
    expect(line?.message).toContain("the task's state is unchanged: Error: callback broke");
  });

  it('calls the failure callback on a worker when a deferral times out', async () => {
    services = await startServices(database, bag);
    const { ti } = await runToEnd(database, bag.get('deferral_timeout_callbacks'));
    expect(ti('waits').state).toBe('failed');
    expect(events('waits')).toEqual([expect.stringMatching(/^failure:waits:1:TaskDeferralTimeout: deferral on trigger updraft\.DateTimeTrigger timed out/)]);
  });

  it('runs the callbacks of TIs their trigger ended in the triggerer, on a worker', async () => {
    services = await startServices(database, bag);
    const { ti } = await runToEnd(database, bag.get('ended_by_trigger'));
    expect([ti('ends_ok').state, ti('ends_failed').state]).toEqual(['success', 'failed']);
    await waitFor(() => events('ends_ok').length && events('ends_failed').length, 'both callbacks');
    expect(events('ends_ok')).toEqual(['success:ends_ok:1']);
    expect(events('ends_failed')).toEqual(['failure:ends_failed:1:TaskFailedEvent: the trigger says no']);
  });

  /** Start `dagId`, wait for its TI to run, then make it look like its worker died. */
  async function reap(dagId: string) {
    services = await startServices(database, bag, { zombieThresholdMs: 1000 });
    const { runPk } = await import('../../core/index.ts').then((m) => m.triggerDagRun(database, bag.get(dagId), {}));
    await waitFor(async () => (await queries.dagRuns.runTaskInstances(database.db, runPk)).find((t) => t.state === 'running'), 'the TI to run');
    await database.db.execute(sql`update task_instances set worker_id = 'gone', heartbeat_at = now() - interval '1 hour' where run_pk = ${runPk} and state = 'running'`);
    return runPk;
  }

  it('runs the failure callback of a zombie the scheduler failed, on a worker, into the TI\'s log', async () => {
    const runPk = await reap('zombie_fails');
    await waitFor(() => events('hangs').some((e) => e.startsWith('failure:')), 'the failure callback');
    expect(events('hangs')).toEqual([expect.stringMatching(/^failure:hangs:1:ZombieTaskError: worker gone stopped heartbeating/)]);
    const [ti] = await queries.dagRuns.runTaskInstances(database.db, runPk);
    expect(ti.state).toBe('failed');
    expect(await database.rows(sql`select id from callback_requests`)).toEqual([]);
  });

  it('runs the retry callback of a zombie the scheduler retried, then the retry runs', async () => {
    const runPk = await reap('zombie_retries');
    await waitFor(async () => (await queries.dagRuns.getRunByPk(database.db, runPk))?.state === 'success', 'the retry to succeed');
    await waitFor(() => events('hangs').includes('success:hangs:2'), 'the success callback of try 2');
    expect(events('hangs')).toEqual([expect.stringMatching(/^retry:hangs:1:ZombieTaskError: /), 'success:hangs:2']);
  });

  it('runs the DAG\'s success callback when a run succeeds, and its failure callbacks (one throwing) when one fails', async () => {
    services = await startServices(database, bag);
    const ok = await runToEnd(database, bag.get('run_succeeds'));
    expect(ok.run.state).toBe('success');
    await waitFor(() => g.callbackEvents!.includes('dag-success:run_succeeds:success:success'), 'the run success callback');
    const bad = await runToEnd(database, bag.get('run_fails'));
    expect(bad.run.state).toBe('failed');
    await waitFor(() => g.callbackEvents!.includes('dag-failure:run_fails:failed:task_failure'), 'the run failure callback');
    expect(g.callbackEvents!.filter((e) => e.startsWith('dag-'))).toEqual(['dag-success:run_succeeds:success:success', 'dag-failure:run_fails:failed:task_failure']);
    await waitFor(async () => (await database.rows(sql`select id from callback_requests`)).length === 0, 'the queue to drain');
  });

  it('dags test (runDagLocally) runs the run\'s callback before it returns', async () => {
    const result = await runDagLocally(database, bag, bag.get('run_succeeds'), {});
    expect(result.state).toBe('success');
    expect(g.callbackEvents).toContain('dag-success:run_succeeds:success:success');
  });
});
