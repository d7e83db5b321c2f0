/**
 * Deferrals that do not end in an event: timeouts (the task's own, and executionTimeout
 * clamping it), triggers that raise (retry policy, softFail sensors), a trigger row naming an
 * unregistered class, and kwargs that fail validation when the task defers.
 */
import { describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { TaskState } from '../../core/index.ts';
import { counter, useDeferSuite } from './harness.ts';

describe('deferral failures', () => {
  const suite = useDeferSuite('defer-core');

  it('fails the task with TaskDeferralTimeout when the deferral times out, without retrying', async () => {
    const stack = await suite.open();
    const { runPk } = await stack.trigger('defer_timeout');
    expect(await stack.finished(runPk)).toBe('failed');
    const ti = await stack.ti(runPk, 'wait');
    expect(ti).toMatchObject({ state: TaskState.FAILED, tryNumber: 1 });
    expect(ti.error).toMatch(/^TaskDeferralTimeout: (defer_timeout\.wait manual__\S+: )?deferral on trigger test\.NeverTrigger timed out$/);
    expect(await stack.history(ti.id)).toEqual([{ try_number: 1, state: TaskState.FAILED, error: ti.error }]);
    expect(counter('forever.defer_timeout.execute')).toBe(1);
    expect(counter('forever.defer_timeout.complete')).toBe(0);
    // Nobody waits any more: the trigger is stopped (cleanup, not onKill) and its row removed.
    await stack.wait(async () => counter('never.defer_timeout.cleanup') === 1, 'the timed-out trigger to be cleaned up');
    expect(counter('never.defer_timeout.onKill')).toBe(0);
    await stack.wait(async () => (await stack.triggerRows()).length === 0, 'the trigger row to be deleted');
    expect(await stack.triggerer!.metrics.timeouts.get()).toMatchObject({ values: [{ value: 1 }] });
  });

  it('clamps the deferral timeout to the task executionTimeout, counted from the try start', async () => {
    const stack = await suite.open();
    const { runPk } = await stack.trigger('defer_clamp');
    const deferred = await stack.waitState(runPk, 'wait', TaskState.DEFERRED);
    // defer() asked for 1h; executionTimeout is 1s from start_date.
    expect(deferred.triggerTimeout).not.toBeNull();
    expect(deferred.triggerTimeout!.getTime()).toBeLessThanOrEqual(deferred.startDate!.getTime() + 1000);
    expect(deferred.triggerTimeout!.getTime()).toBeGreaterThan(deferred.startDate!.getTime());
    expect(await stack.finished(runPk)).toBe('failed');
    const ti = await stack.ti(runPk, 'wait');
    expect(ti).toMatchObject({ state: TaskState.FAILED, tryNumber: 1 });
    expect(ti.error).toMatch(/^TaskDeferralTimeout: .*timed out/);
  });

  it('turns a raising trigger into TaskDeferralError and retries; the second try succeeds', async () => {
    const stack = await suite.open();
    const { runPk } = await stack.trigger('defer_retry');
    expect(await stack.finished(runPk)).toBe('success');
    const ti = await stack.ti(runPk, 'flaky');
    expect(ti).toMatchObject({ state: TaskState.SUCCESS, tryNumber: 2, error: null });
    expect(await stack.xcom(runPk, 'flaky')).toBe('ok on try 2');
    expect(await stack.history(ti.id)).toEqual([
      { try_number: 1, state: TaskState.UP_FOR_RETRY, error: 'TaskDeferralError: trigger test.RaisingTrigger raised Error: boom from the trigger' },
      { try_number: 2, state: TaskState.SUCCESS, error: null },
    ]);
    expect(counter('raising.runs')).toBe(1);
    expect(await stack.triggerer!.metrics.failures.get()).toMatchObject({ values: [{ value: 1 }] });
  });

  it('skips a softFail sensor whose trigger raises, without retrying', async () => {
    const stack = await suite.open();
    const { runPk } = await stack.trigger('defer_soft_fail');
    expect(await stack.finished(runPk)).toBe('success');
    const ti = await stack.ti(runPk, 'sense');
    expect(ti).toMatchObject({ state: TaskState.SKIPPED, tryNumber: 1, error: null });
    const lines = await stack.logLines(ti.id);
    expect(lines).toContain('skipped: sensor "sense" of DAG "defer_soft_fail" skipped (softFail) because its wait failed: '
      + 'trigger test.RaisingTrigger raised Error: the source is gone');
  });

  it('fails the task at once, naming the trigger, when a trigger row names an unregistered class', async () => {
    const stack = await suite.open({ triggerer: false });
    const { runPk } = await stack.trigger('defer_unknown');
    const deferred = await stack.waitState(runPk, 'wait', TaskState.DEFERRED);
    await stack.database.rows(sql`update triggers set name = 'nope.Missing' where id = ${deferred.triggerId}`);
    await stack.startTriggerer();
    expect(await stack.finished(runPk)).toBe('failed');
    const ti = await stack.ti(runPk, 'wait');
    // retries: 2, yet no retry: a missing class will not appear on its own.
    expect(ti).toMatchObject({ state: TaskState.FAILED, tryNumber: 1 });
    expect(ti.error).toMatch(/^TaskFailedNoRetry: UnknownTriggerError: unknown trigger "nope\.Missing"; registered triggers: .*test\.NeverTrigger/);
    expect(ti.error).toContain('Register the class with registerTrigger()');
    expect((await stack.history(ti.id)).map((h) => h.state)).toEqual([TaskState.FAILED]);
    expect(stack.triggererLog).toContainEqual(expect.stringMatching(/^trigger #\d+ \(nope\.Missing\) cannot run: UnknownTriggerError: unknown trigger "nope\.Missing"/));
    expect(counter('never.defer_unknown.runs')).toBe(0);
    expect(counter('forever.defer_unknown.complete')).toBe(0);
    expect(await stack.triggerRows()).toEqual([]);
  });

  it('fails the task with InvalidTriggerKwargsError naming the trigger when it defers with bad kwargs', async () => {
    const stack = await suite.open();
    const { runPk } = await stack.trigger('defer_invalid_kwargs');
    expect(await stack.finished(runPk)).toBe('failed');
    const ti = await stack.ti(runPk, 'bad');
    expect(ti).toMatchObject({ state: TaskState.FAILED, tryNumber: 1, triggerId: null });
    expect(ti.error).toMatch(/^InvalidTriggerKwargsError: trigger "test\.ValidatedTrigger" has invalid kwargs: count: /);
    expect(await stack.triggerRows()).toEqual([]);
    expect((await stack.history(ti.id)).map((h) => h.state)).toEqual([TaskState.FAILED]);
  });
});
