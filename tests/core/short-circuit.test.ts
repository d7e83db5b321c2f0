/**
 * task.shortCircuit in-process on PGlite: a falsy result skips everything downstream whatever
 * its trigger rule (Airflow's default), or with ignoreDownstreamTriggerRules: false only the
 * direct downstream tasks, leaving the rest to their trigger rules; a truthy result is the XCom.
 */
import { describe, expect, it } from 'vitest';
import { RunState } from '../../core/index.ts';
import { useFlowFixtures } from '../helpers/flow-runs.ts';

describe('short-circuit (runDagLocally on PGlite)', () => {
  const { run } = useFlowFixtures();

  it('a falsy result skips everything downstream, all_done and one_success tasks included, and stores no XCom', async () => {
    const r = await run('sc_ignore');
    expect(r.state).toBe(RunState.SUCCESS);
    expect(r.states).toEqual({ check: 'success', a: 'skipped', b: 'skipped', c: 'skipped' });
    expect(await r.xcom('check')).toBeUndefined();
  });

  it('a truthy result lets downstream run and is the XCom', async () => {
    const r = await run('sc_ignore', { go: 'yes' });
    expect(r.states).toEqual({ check: 'success', a: 'success', b: 'success', c: 'success' });
    expect(await r.xcom('check')).toBe('yes');
  });

  it('with ignoreDownstreamTriggerRules: false, only direct downstream tasks are skipped and trigger rules decide the rest', async () => {
    const r = await run('sc_respect');
    expect(r.state).toBe(RunState.SUCCESS);
    expect(r.states).toEqual({ check: 'success', a: 'skipped', b: 'success', c: 'skipped' });
  });
});
