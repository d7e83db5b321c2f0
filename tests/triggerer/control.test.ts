/**
 * The triggerer's control paths: a user kill of a deferred TI reaches the trigger at once
 * (onKill and cleanup, row deleted), a shutdown runs cleanup only, and a trigger that blocks
 * the event loop is named by the watchdog in the log and in the metrics.
 */
import { describe, expect, it } from 'vitest';
import { changeTaskInstance, TaskState, TiAction } from '../../core/index.ts';
import { counter, useDeferSuite } from './harness.ts';

describe('triggerer control paths', () => {
  const suite = useDeferSuite('defer-core');

  it('kills the trigger of a TI marked failed while deferred: onKill and cleanup run, the row goes', async () => {
    // A heartbeat far away: only the kill NOTIFY can stop the trigger within the wait below.
    const stack = await suite.open({ triggerer: { heartbeatMs: 600_000 } });
    const { runPk, runId } = await stack.trigger('defer_cancel');
    const remote = await stack.waitState(runPk, 'remote', TaskState.DEFERRED);
    const other = await stack.waitState(runPk, 'other', TaskState.DEFERRED);
    await stack.wait(async () => counter('job.cancel.runs') === 1 && counter('job.survivor.runs') === 1, 'both triggers to run');
    expect(stack.triggerer!.runs.has(remote.triggerId!)).toBe(true);

    const changed = await changeTaskInstance(stack.database, { dagId: 'defer_cancel', runId, taskId: 'remote' }, TiAction.MARK_FAILED);
    expect(changed).toEqual({ tiIds: [remote.id], killedTriggers: [remote.triggerId] });
    await stack.wait(async () => counter('job.cancel.onKill') === 1 && counter('job.cancel.cleanup') === 1,
      'onKill and cleanup of the killed trigger', 10_000);
    expect(stack.triggerer!.runs.has(remote.triggerId!)).toBe(false);

    const killed = await stack.ti(runPk, 'remote');
    expect(killed).toMatchObject({ state: TaskState.FAILED, triggerId: null, nextMethod: null, nextKwargs: null, triggerTimeout: null });
    expect((await stack.triggerRows()).map((r) => r.id)).toEqual([other.triggerId]);
    // The other trigger is untouched.
    expect(counter('job.survivor.onKill')).toBe(0);
    expect(counter('job.survivor.cleanup')).toBe(0);
    expect(await stack.ti(runPk, 'other')).toMatchObject({ state: TaskState.DEFERRED });

    // A triggerer shutdown is not a kill: cleanup runs, onKill does not, and the row is handed back.
    const triggerer = stack.triggerer!;
    stack.triggerer = undefined;
    await triggerer.stop();
    await stack.wait(async () => counter('job.survivor.cleanup') === 1, 'cleanup of the remaining trigger on shutdown', 10_000);
    expect(counter('job.survivor.onKill')).toBe(0);
    expect(counter('job.cancel.onKill')).toBe(1);
    expect(await stack.triggerRows()).toMatchObject([{ id: other.triggerId, triggerer_id: null }]);
    expect(await stack.ti(runPk, 'other')).toMatchObject({ state: TaskState.DEFERRED });
  });

  it('reports a trigger that blocks the event loop by name and TI, and counts it in the metrics', async () => {
    const stack = await suite.open();
    const { runPk, runId } = await stack.trigger('defer_blocking');
    expect(await stack.finished(runPk)).toBe('success');
    expect(await stack.xcom(runPk, 'spin')).toEqual({ blockedMs: 500, spun: true });

    const blocked = () => stack.triggererLog.filter((l) => l.includes('blocked the event loop'));
    const reports = await stack.wait(async () => (blocked().length ? blocked() : null), 'the watchdog report', 10_000);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toContain('test.LoopBlockingTrigger');
    expect(reports[0]).toContain(`defer_blocking.spin ${runId}`);
    const ms = Number(reports[0].match(/blocked the event loop for (\d+) ms$/)?.[1]);
    expect(ms).toBeGreaterThanOrEqual(450);

    const metric = await stack.triggerer!.metrics.registry.getSingleMetricAsString('updraft_triggers_blocked_main_thread_total');
    expect(metric).toContain('updraft_triggers_blocked_main_thread_total{trigger="test.LoopBlockingTrigger"} 1');
    expect(await stack.triggerer!.metrics.blocked.get()).toMatchObject({ values: [{ labels: { trigger: 'test.LoopBlockingTrigger' }, value: 1 }] });
  });
});
