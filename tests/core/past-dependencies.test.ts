/**
 * dependsOnPast and waitForDownstream across three runs (on PGlite and PostgreSQL, with an
 * in-process scheduler and worker): the first run has no previous run and runs; a later run's
 * TI waits, in state none, until the previous run's TI (and, with waitForDownstream, its
 * downstream TIs) succeeded or were skipped, and runs once they do.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TaskState, RunState, TiAction, changeTaskInstance, evaluateRun } from '../../core/index.ts';
import { startServices, useFlowFixtures, type Services } from '../helpers/flow-runs.ts';
import { drivers, waitFor } from '../helpers/pg.ts';

const DAYS = ['2026-01-01T00:00:00.000Z', '2026-01-02T00:00:00.000Z', '2026-01-03T00:00:00.000Z'];

for (const driver of drivers) describe.skipIf(!driver.available)(`run-to-run dependencies (${driver.name}, in-process scheduler and worker)`, () => {
  const f = useFlowFixtures(driver);
  let services: Services;
  beforeEach(async () => {
    services = await startServices(f.database, f.bag);
  });
  afterEach(async () => {
    await services.stop();
  });

  /** Wait until `taskId` of every run but the first is settled in `state`, and check a fresh evaluation leaves it there. */
  async function heldBack(runPks: number[], dagId: string, key: string, taskId = key) {
    for (const pk of runPks) {
      await waitFor(async () => (await services.tis(pk)).get(key)?.state === TaskState.NONE, `${key} of run #${pk} to wait`);
      await evaluateRun(f.database.db, pk, f.bag.get(dagId), [taskId]);
      expect((await services.tis(pk)).get(key)?.state).toBe(TaskState.NONE);
    }
  }

  it('dependsOnPast: runs 2 and 3 wait for the failed TI of run 1; once it is marked success they run in order', async () => {
    const dag = f.bag.get('past_depends');
    const first = await services.createRun(dag, DAYS[0], { fail: ['serial'] });
    const second = await services.createRun(dag, DAYS[1]);
    const third = await services.createRun(dag, DAYS[2]);
    expect((await services.finished(first.runPk)).state).toBe(RunState.FAILED);
    // Tasks without the flag do not wait.
    for (const pk of [second.runPk, third.runPk]) {
      await waitFor(async () => (await services.tis(pk)).get('free')?.state === TaskState.SUCCESS, `free of run #${pk}`);
    }
    await heldBack([second.runPk, third.runPk], 'past_depends', 'serial');
    await changeTaskInstance(f.database, { dagId: 'past_depends', runId: first.runId, taskId: 'serial' }, TiAction.MARK_SUCCESS);
    const two = await services.finished(second.runPk);
    const three = await services.finished(third.runPk);
    expect([two.state, three.state]).toEqual([RunState.SUCCESS, RunState.SUCCESS]);
    expect(three.tis.get('serial')!.startDate!.getTime()).toBeGreaterThanOrEqual(two.tis.get('serial')!.endDate!.getTime());
  });

  it('dependsOnPast on a mapped task waits per map index', async () => {
    const dag = f.bag.get('past_depends');
    const first = await services.createRun(dag, DAYS[0], { failItem: 1 });
    const second = await services.createRun(dag, DAYS[1]);
    expect((await services.finished(first.runPk)).state).toBe(RunState.FAILED);
    await waitFor(async () => (await services.tis(second.runPk)).get('per_item[0]')?.state === TaskState.SUCCESS, 'item 0 of run 2');
    await heldBack([second.runPk], 'past_depends', 'per_item[1]', 'per_item');
    await changeTaskInstance(f.database, { dagId: 'past_depends', runId: first.runId, taskId: 'per_item', mapIndex: 1 }, TiAction.MARK_SUCCESS);
    expect((await services.finished(second.runPk)).state).toBe(RunState.SUCCESS);
  });

  it('waitForDownstream: run 2 waits for the downstream TI of run 1 although run 1\'s own TI succeeded; run 3 follows', async () => {
    const dag = f.bag.get('past_downstream');
    const first = await services.createRun(dag, DAYS[0], { fail: ['load'] });
    const second = await services.createRun(dag, DAYS[1]);
    const third = await services.createRun(dag, DAYS[2]);
    const one = await services.finished(first.runPk);
    expect([one.state, one.tis.get('extract')!.state]).toEqual([RunState.FAILED, TaskState.SUCCESS]);
    await heldBack([second.runPk], 'past_downstream', 'extract');
    await changeTaskInstance(f.database, { dagId: 'past_downstream', runId: first.runId, taskId: 'load' }, TiAction.MARK_SUCCESS);
    const two = await services.finished(second.runPk);
    const three = await services.finished(third.runPk);
    expect([two.state, three.state]).toEqual([RunState.SUCCESS, RunState.SUCCESS]);
    // Run 3's extract waited for run 2's load, not only for run 2's extract.
    expect(three.tis.get('extract')!.startDate!.getTime()).toBeGreaterThanOrEqual(two.tis.get('load')!.endDate!.getTime());
  });
});
