/**
 * Start from trigger (the scheduler defers the TI; no worker runs execute) and end from
 * trigger (TaskSuccessEvent / TaskFailedEvent finish the TI in the triggerer; no worker resumes).
 */
import { describe, expect, it } from 'vitest';
import { changeTaskInstance, TaskState, TiAction } from '../../core/index.ts';
import { counter, openGate, useDeferSuite } from './harness.ts';

describe('start and end from the triggerer', () => {
  const suite = useDeferSuite('defer-core');

  it('defers a startTrigger() task straight from none, then resumes it in executeComplete', async () => {
    const stack = await suite.open();
    const { runPk } = await stack.trigger('defer_start');
    const deferred = await stack.waitState(runPk, 'started', TaskState.DEFERRED);
    expect(deferred).toMatchObject({ tryNumber: 1, workerId: null, nextMethod: 'executeComplete', nextKwargs: { kwargs: { from: 'startTrigger' } } });
    expect(deferred.startDate).not.toBeNull();
    expect(deferred.triggerId).not.toBeNull();
    // No worker ever held it: no finished try yet, execute never called.
    expect(await stack.history(deferred.id)).toEqual([]);
    expect(counter('start.execute')).toBe(0);
    await stack.wait(async () => counter('gate.start.runs') === 1, 'the triggerer to run the start trigger');

    openGate('start');
    expect(await stack.finished(runPk)).toBe('success');
    expect(counter('start.execute')).toBe(0);
    expect(counter('start.complete')).toBe(1);
    const ti = await stack.ti(runPk, 'started');
    expect(ti).toMatchObject({ state: TaskState.SUCCESS, tryNumber: 1 });
    expect(await stack.xcom(runPk, 'started')).toEqual({ event: { gate: 'start', tokenChars: 0 }, kwargs: { from: 'startTrigger' }, tryNumber: 1 });
    expect(await stack.history(ti.id)).toEqual([{ try_number: 1, state: TaskState.SUCCESS, error: null }]);
  });

  it('starts a cleared startTrigger() task from the trigger again, in a new try', async () => {
    const stack = await suite.open();
    openGate('start');
    const { runPk, runId } = await stack.trigger('defer_start');
    expect(await stack.finished(runPk)).toBe('success');
    const first = await stack.ti(runPk, 'started');
    expect(first).toMatchObject({ state: TaskState.SUCCESS, tryNumber: 1 });

    await changeTaskInstance(stack.database, { dagId: 'defer_start', runId, taskId: 'started' }, TiAction.CLEAR);
    await stack.wait(async () => {
      const ti = await stack.ti(runPk, 'started');
      return ti.state === TaskState.SUCCESS && (await stack.history(ti.id)).length === 2;
    }, 'the cleared TI to run again');
    expect(counter('start.execute')).toBe(0);
    expect(counter('start.complete')).toBe(2);
    // Like any cleared task, the second run is a new try (Airflow increments try_number on clear).
    expect((await stack.history(first.id)).map((h) => h.try_number)).toEqual([1, 2]);
    expect(await stack.ti(runPk, 'started')).toMatchObject({ state: TaskState.SUCCESS, tryNumber: 2 });
  });

  it('ends a task as success from TaskSuccessEvent with its XComs, and runs the downstream', async () => {
    const stack = await suite.open();
    const { runPk } = await stack.trigger('defer_end_success');
    expect(await stack.finished(runPk)).toBe('success');
    const finish = await stack.ti(runPk, 'finish');
    expect(finish).toMatchObject({ state: TaskState.SUCCESS, tryNumber: 1, error: null, triggerId: null, nextMethod: null });
    expect(await stack.xcom(runPk, 'finish')).toBe(42);
    expect(await stack.xcom(runPk, 'finish', 'note')).toBe('set by the trigger');
    expect(counter('end.defer_end_success.execute')).toBe(1);
    expect(counter('end.defer_end_success.complete')).toBe(0);
    expect(await stack.history(finish.id)).toEqual([{ try_number: 1, state: TaskState.SUCCESS, error: null }]);
    expect(await stack.ti(runPk, 'plus_one')).toMatchObject({ state: TaskState.SUCCESS });
    expect(await stack.xcom(runPk, 'plus_one')).toBe(43);
  });

  it('ends a task as failed from TaskFailedEvent; the downstream is upstream_failed', async () => {
    const stack = await suite.open();
    const { runPk } = await stack.trigger('defer_end_failed');
    expect(await stack.finished(runPk)).toBe('failed');
    const finish = await stack.ti(runPk, 'finish');
    expect(finish).toMatchObject({ state: TaskState.FAILED, tryNumber: 1, error: 'TaskFailedEvent: the remote job failed' });
    expect(counter('end.defer_end_failed.complete')).toBe(0);
    expect(await stack.history(finish.id)).toEqual([{ try_number: 1, state: TaskState.FAILED, error: 'TaskFailedEvent: the remote job failed' }]);
    expect(await stack.ti(runPk, 'plus_one')).toMatchObject({ state: TaskState.UPSTREAM_FAILED });
  });

  it('ends the task failed on a TaskFailedEvent even with retries left, as documented (Airflow semantics)', async () => {
    const stack = await suite.open();
    const { runPk } = await stack.trigger('defer_end_failed_retry');
    await stack.finished(runPk);
    const finish = await stack.ti(runPk, 'finish');
    expect((await stack.history(finish.id)).map((h) => [h.try_number, h.state, h.error])).toEqual([
      [1, TaskState.FAILED, 'TaskFailedEvent: the remote job failed'],
    ]);
    expect(finish).toMatchObject({ state: TaskState.FAILED, tryNumber: 1 });
  });
});
