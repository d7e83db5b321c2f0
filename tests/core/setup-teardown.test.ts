/**
 * Setup and teardown in-process on PGlite: the teardown runs after the work whether it
 * succeeded or failed, is skipped when its setup failed, never decides the run's state unless
 * onFailureFailDagrun; clearing the work clears its setup and teardown, which run again.
 */
import { describe, expect, it } from 'vitest';
import { RunState, TiAction, changeTaskInstance } from '../../core/index.ts';
import { startServices, useFlowFixtures } from '../helpers/flow-runs.ts';

describe('setup and teardown (PGlite, in-process scheduler and worker)', () => {
  const f = useFlowFixtures();
  const run = async (dagId: string, fail: string[] = []) => {
    const r = await f.run(dagId, { fail });
    return { state: r.state, states: r.states };
  };

  it('work succeeds: setup, work and teardown run in order and the run succeeds (methods and options alike)', async () => {
    for (const dagId of ['st_methods', 'st_options']) {
      const r = await run(dagId);
      expect(r).toEqual({ state: RunState.SUCCESS, states: { create: 'success', work: 'success', delete: 'success' } });
      expect(f.bag.get(dagId).task('delete')!.upstreamIds).toEqual(new Set(['create', 'work']));
    }
  });

  it('work fails: the teardown still runs, and the run fails for the work, not the teardown', async () => {
    const r = await run('st_methods', ['work']);
    expect(r).toEqual({ state: RunState.FAILED, states: { create: 'success', work: 'failed', delete: 'success' } });
  });

  it('setup fails: the work is upstream_failed and the teardown skipped', async () => {
    const r = await run('st_options', ['create']);
    expect(r).toEqual({ state: RunState.FAILED, states: { create: 'failed', work: 'upstream_failed', delete: 'skipped' } });
  });

  it('a failing teardown does not fail the run, unless onFailureFailDagrun', async () => {
    expect(await run('st_methods', ['delete'])).toEqual({ state: RunState.SUCCESS, states: { create: 'success', work: 'success', delete: 'failed' } });
    expect(await run('st_strict', ['delete'])).toEqual({ state: RunState.FAILED, states: { create: 'success', work: 'success', delete: 'failed' } });
  });

  it('clearing the work clears its setup and teardown; all three run again', async () => {
    const services = await startServices(f.database, f.bag);
    try {
      const { runPk, runId } = await services.createRun(f.bag.get('st_methods'), '2026-01-01T00:00:00Z');
      expect((await services.finished(runPk)).state).toBe(RunState.SUCCESS);
      const cleared = await changeTaskInstance(f.database, { dagId: 'st_methods', runId, taskId: 'work' }, TiAction.CLEAR);
      expect(cleared.tiIds).toHaveLength(3);
      const again = await services.finished(runPk);
      expect(again.state).toBe(RunState.SUCCESS);
      expect([...again.tis].map(([id, t]) => [id, t.state, t.tryNumber])).toEqual([
        ['create', 'success', 2], ['work', 'success', 2], ['delete', 'success', 2],
      ]);
      const at = (id: string) => again.tis.get(id)!;
      expect(at('work').startDate!.getTime()).toBeGreaterThanOrEqual(at('create').endDate!.getTime());
      expect(at('delete').startDate!.getTime()).toBeGreaterThanOrEqual(at('work').endDate!.getTime());
    } finally {
      await services.stop();
    }
  });
});
