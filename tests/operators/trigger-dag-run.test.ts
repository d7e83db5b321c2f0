/**
 * TriggerDagRunOperator on in-memory PGlite with the services in this process: a templated run
 * id and conf, a deferred wait that ends in an allowed or a failed state, a polled wait, no
 * wait, and an unknown DAG id; plus its options and the trigger's serialization.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import {
  DagBag, dag, queries, openDatabase, TriggerDagRunOperator, DagRunStateTrigger, deserializeTrigger, serializeTrigger, DagDefinitionError,
  type Database,
} from '../../core/index.ts';
import { startServices, runToEnd, type Services } from '../helpers/services.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/trigger-dagrun', import.meta.url));

describe('TriggerDagRunOperator on a worker', () => {
  let database: Database;
  let bag: DagBag;
  let services: Services;
  beforeEach(async () => {
    database = await openDatabase({ dataDir: 'memory://' });
    await database.migrate();
    bag = await DagBag.load(FIXTURE);
    services = await startServices(database, bag);
  });
  afterEach(async () => {
    await services.stop();
    await database.close();
  });

  async function child(parentRunId: string) {
    const [run] = await queries.dagRuns.getRun(database.db, `child__${parentRunId}`, 'target');
    return run;
  }

  it('triggers with a templated run id and conf, and waits deferred until the run succeeds', async () => {
    const parent = await runToEnd(database, bag.get('parent_deferred_ok'));
    expect(parent.run.state).toBe('success');
    const run = await child(parent.run.runId);
    expect(run.state).toBe('success');
    expect(run.conf).toEqual({ n: 7, from: 'parent_deferred_ok' });
    expect(await queries.xcom.readXCom(database.db, parent.run.id, 'trigger', 'trigger_run_id', -1)).toBe(run.runId);
    const logs = (await queries.logs.readLogs(database.db, parent.ti('trigger').id)).map((l) => l.message);
    expect(logs.some((m) => m.startsWith('deferred on trigger updraft.DagRunStateTrigger'))).toBe(true);
  });

  it('fails when the triggered run ends in a failed state (deferred wait)', async () => {
    const parent = await runToEnd(database, bag.get('parent_deferred_fail'));
    expect(parent.run.state).toBe('failed');
    expect((await child(parent.run.runId)).state).toBe('failed');
    expect(parent.ti('trigger').error).toBe(`TaskFailure: TriggerDagRunOperator "trigger" of DAG "parent_deferred_fail": the triggered run "child__${parent.run.runId}" of DAG "target" ended in failed state "failed"`);
  });

  it('waits by polling when not deferrable', async () => {
    const parent = await runToEnd(database, bag.get('parent_polled'));
    expect(parent.run.state).toBe('success');
    expect((await child(parent.run.runId)).state).toBe('success');
  });

  it('does not wait unless asked', async () => {
    const parent = await runToEnd(database, bag.get('parent_no_wait'));
    expect(parent.run.state).toBe('success');
    expect(await child(parent.run.runId)).toBeDefined();
  });

  it('fails without retrying for an unknown DAG id, naming it and the known DAGs', async () => {
    const parent = await runToEnd(database, bag.get('parent_unknown'));
    expect(parent.ti('trigger').state).toBe('failed');
    expect(parent.ti('trigger').tryNumber).toBe(1);
    expect(parent.ti('trigger').error).toMatch(/^TaskFailedNoRetry: TriggerDagRunOperator "trigger" of DAG "parent_unknown" cannot trigger DAG "no_such_dag": unknown DAG "no_such_dag"; known DAGs: .*target/);
  });
});

describe('TriggerDagRunOperator options and DagRunStateTrigger', () => {
  it('rejects a state both allowed and failed, and an unknown state, at DAG import', () => {
    const build = (extra: object) => () => dag({ dagId: 'opts', schedule: null }, () => {
      new TriggerDagRunOperator({ taskId: 't', triggerDagId: 'x', ...extra });
    });
    expect(build({ allowedStates: ['success'], failedStates: ['success'] })).toThrow(DagDefinitionError);
    expect(build({ allowedStates: ['success'], failedStates: ['success'] })).toThrow('states success are both allowed and failed');
    expect(build({ failedStates: ['exploded'] })).toThrow(/task "t": invalid options: failedStates\.0/);
  });

  it('round-trips the trigger and decides from the run state', () => {
    const trigger = new DagRunStateTrigger({ dagId: 'target', runId: 'r1', allowedStates: ['success'], failedStates: ['failed'], pokeIntervalMs: 500 });
    const again = deserializeTrigger(serializeTrigger(trigger)) as DagRunStateTrigger;
    expect(again.kwargs).toEqual(trigger.kwargs);
    expect(again.decide([])).toBeNull();
    expect(again.decide(['running'])).toBeNull();
    expect(again.decide(['success'])).toEqual({ outcome: 'allowed', state: 'success', runId: 'r1' });
    expect(again.decide(['failed'])).toEqual({ outcome: 'failed', state: 'failed', runId: 'r1' });
  });
});
