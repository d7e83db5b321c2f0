/**
 * Function sensors end to end on in-memory PGlite (scheduler, worker and triggerer in this
 * process): reschedule mode frees the slot between pokes and counts its timeout from the first
 * poke; poke mode holds the slot and returns the poke's value; and the authoring side
 * (options, dependencies, exponential backoff) without a database.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { DagBag, dag, task, queries, openDatabase, triggerDagRun, FunctionSensor, DagDefinitionError, RESCHEDULE_METHOD, type Database } from '../../core/index.ts';
import { waitFor } from '../helpers/pg.ts';
import { startServices, runToEnd, type Services } from '../helpers/services.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/sensors-poke', import.meta.url));
const g = globalThis as { sensorEvents?: string[] };

describe('function sensors on a worker', () => {
  let database: Database;
  let services: Services | undefined;
  beforeEach(async () => {
    database = await openDatabase({ dataDir: 'memory://' });
    await database.migrate();
    g.sensorEvents = [];
  });
  afterEach(async () => {
    await services?.stop();
    services = undefined;
    await database.close();
  });

  it('reschedule mode frees the slot between pokes: a 1-slot worker runs another task meanwhile', async () => {
    const bag = await DagBag.load(FIXTURE);
    services = await startServices(database, bag, { slots: 1 });
    const { run, ti } = await runToEnd(database, bag.get('reschedule_frees_slot'));
    expect(run.state).toBe('success');
    // The sensor poked first (higher priority), gave the slot up, `other` ran, then the sensor saw it.
    expect(g.sensorEvents![0]).toBe('poke');
    expect(g.sensorEvents!.slice(-2)).toEqual(['other', 'poke']);
    expect(ti('wait').tryNumber).toBe(1);
    expect(await queries.xcom.readXCom(database.db, run.id, 'wait', 'return_value', -1)).toBe('seen');
    const logs = (await queries.logs.readLogs(database.db, ti('wait').id)).map((l) => l.message);
    expect(logs.some((m) => m.includes('rescheduled to poke again'))).toBe(true);
  });

  it('reschedule mode: the timeout counts from the first poke, across reschedules, and is not retried', async () => {
    const bag = await DagBag.load(FIXTURE);
    services = await startServices(database, bag, { slots: 1 });
    const { run, ti } = await runToEnd(database, bag.get('reschedule_timeout'));
    expect(run.state).toBe('failed');
    const wait = ti('wait');
    expect(wait.state).toBe('failed');
    expect(wait.error).toMatch(/^SensorTimeout: sensor "wait" of DAG "reschedule_timeout" timed out: its condition was not met after \d+ poke\(s\)/);
    expect(wait.tryNumber).toBe(1);
    // start_date is the first poke's: the try lasted at least the timeout.
    expect(wait.endDate!.getTime() - wait.startDate!.getTime()).toBeGreaterThanOrEqual(1000);
    const pokes = (await queries.logs.readLogs(database.db, wait.id)).filter((l) => l.message.includes('rescheduled to poke again'));
    expect(pokes.length).toBeGreaterThanOrEqual(3);
  });

  it('a sensor reaped between reschedules retries as a fresh try', async () => {
    const bag = await DagBag.load(FIXTURE);
    let release!: () => void;
    (globalThis as { releaseSensor?: Promise<void> }).releaseSensor = new Promise<void>((r) => { release = r; });
    services = await startServices(database, bag, { zombieThresholdMs: 1000 });
    try {
      const { runPk } = await triggerDagRun(database, bag.get('reaped_sensor'), {});
      await waitFor(async () => (await queries.dagRuns.runTaskInstances(database.db, runPk)).find((t) => t.state === 'running' && t.nextMethod === RESCHEDULE_METHOD), 'the second poke');
      await database.db.execute(sql`update task_instances set worker_id = 'gone', heartbeat_at = now() - interval '1 hour' where run_pk = ${runPk} and state = 'running'`);
      await waitFor(async () => (await queries.dagRuns.getRunByPk(database.db, runPk))?.state === 'success', 'the retry to succeed');
      const [ti] = await queries.dagRuns.runTaskInstances(database.db, runPk);
      expect([ti.state, ti.tryNumber, ti.nextMethod]).toEqual(['success', 2, null]);
    } finally {
      release();
    }
  });

  it('reschedule mode with softFail skips on timeout', async () => {
    const bag = await DagBag.load(FIXTURE);
    services = await startServices(database, bag);
    const { ti } = await runToEnd(database, bag.get('soft_timeout'));
    expect(ti('wait').state).toBe('skipped');
  });

  it('poke mode holds the slot, pokes until done, and returns the poke value', async () => {
    const bag = await DagBag.load(FIXTURE);
    services = await startServices(database, bag);
    const { run, ti } = await runToEnd(database, bag.get('poke_mode'));
    expect(run.state).toBe('success');
    expect(await queries.xcom.readXCom(database.db, run.id, 'wait', 'return_value', -1)).toBe(42);
    const logs = (await queries.logs.readLogs(database.db, ti('wait').id)).map((l) => l.message);
    expect(logs.filter((m) => /poke \d: not done yet/.test(m))).toHaveLength(2);
    expect(logs.some((m) => m.includes('rescheduled'))).toBe(false);
  });
});

describe('function sensor authoring', () => {
  it('task.sensor links the outputs it receives as upstream tasks', () => {
    const d = dag({ dagId: 'sensor_links', schedule: null }, () => {
      const path = task('path', async () => '/tmp/x')();
      task.sensor<{ path: string }>('wait_for', async ({ path: p }) => p.length > 0)({ path });
    });
    expect([...d.tasks.get('wait_for')!.upstreamIds]).toEqual(['path']);
    expect(d.tasks.get('wait_for')!.mode).toBe('async');
  });

  it('rejects an unknown mode at DAG import', () => {
    const attempt = () => dag({ dagId: 'bad_mode', schedule: null }, () => {
      new FunctionSensor({ taskId: 'wait', callable: () => true, mode: 'sometimes' as 'poke' });
    });
    expect(attempt).toThrow(DagDefinitionError);
    expect(attempt).toThrow(/task "wait": invalid options: mode: Invalid option: expected one of "poke"\|"reschedule"/);
  });

  it('exponential backoff doubles the wait from pokeInterval / 2, with deterministic jitter, capped by maxWait', () => {
    let plain!: FunctionSensor, capped!: FunctionSensor;
    dag({ dagId: 'backoff', schedule: null }, () => {
      plain = new FunctionSensor({ taskId: 'plain', callable: () => false, pokeInterval: 1000, exponentialBackoff: true });
      capped = new FunctionSensor({ taskId: 'capped', callable: () => false, pokeInterval: 1000, exponentialBackoff: true, maxWait: 5000 });
    });
    const at = Date.parse('2024-01-01T00:00:00Z');
    const ctx = { dagId: 'backoff', taskId: 'plain' };
    for (let n = 1; n <= 6; n++) {
      const min = 1000 * 2 ** (n - 2);
      const wait = plain.nextPokeInterval(ctx, n, at);
      expect(wait).toBeGreaterThanOrEqual(min);
      expect(wait).toBeLessThan(2 * min);
      expect(plain.nextPokeInterval(ctx, n, at)).toBe(wait);
    }
    expect(capped.nextPokeInterval(ctx, 6, at)).toBe(5000);
  });
});
