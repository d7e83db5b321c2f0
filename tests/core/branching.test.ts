/**
 * Branching in-process on PGlite (runDagLocally): the branch's other direct downstream tasks
 * are skipped, the skip cascades through all_success tasks, a none_failed_min_one_success join
 * runs; lists, task groups, a join directly downstream of the branch, mapped branches, and the
 * error for a choice the branch cannot follow.
 */
import { describe, expect, it } from 'vitest';
import { RunState, TaskState, TiAction, changeTaskInstance } from '../../core/index.ts';
import { startServices, useFlowFixtures } from '../helpers/flow-runs.ts';

describe('branching (runDagLocally on PGlite)', () => {
  const f = useFlowFixtures();
  const run = f.run;

  it('follows one task: the other branch is skipped down to the join, which runs', async () => {
    const r = await run('branch_one');
    expect(r.state).toBe(RunState.SUCCESS);
    expect(r.states).toEqual({
      pick: 'success', a: 'success', after_a: 'success', b: 'skipped', after_b: 'skipped', join: 'success', end: 'success',
    });
    expect(await r.xcom('pick')).toBe('a');
  });

  it('a task the branch did not follow, cleared by hand, is skipped again (Airflow\'s NotPreviouslySkippedDep)', async () => {
    const services = await startServices(f.database, f.bag);
    try {
      const { runPk, runId } = await services.createRun(f.bag.get('branch_one'), '2026-01-01T00:00:00Z');
      expect((await services.finished(runPk)).state).toBe(RunState.SUCCESS);
      await changeTaskInstance(f.database, { dagId: 'branch_one', runId, taskId: 'b' }, TiAction.CLEAR);
      const again = await services.finished(runPk);
      expect([again.state, again.tis.get('b')!.state, again.tis.get('b')!.tryNumber]).toEqual([RunState.SUCCESS, TaskState.SKIPPED, 0]);
    } finally {
      await services.stop();
    }
  });

  it('follows a list of tasks and skips the rest', async () => {
    const r = await run('branch_many');
    expect(r.state).toBe(RunState.SUCCESS);
    expect(r.states).toMatchObject({ a: 'success', b: 'success', c: 'skipped', join: 'success' });
  });

  it('follows a task group by id: its roots run, the group runs through, the other task is skipped', async () => {
    const r = await run('branch_group');
    expect(r.state).toBe(RunState.SUCCESS);
    expect(r.states).toEqual({ pick: 'success', 'g.x': 'success', 'g.y': 'success', other: 'skipped' });
  });

  it('never skips a join that is also downstream of the followed branch; choosing the join skips the rest', async () => {
    const followA = await run('branch_direct_join');
    expect(followA.states).toEqual({ pick: 'success', a: 'success', join: 'success' });
    const followJoin = await run('branch_direct_join', { to: 'join' });
    expect(followJoin.state).toBe(RunState.SUCCESS);
    expect(followJoin.states).toEqual({ pick: 'success', a: 'skipped', join: 'success' });
  });

  it('a mapped branch: each TI chooses for itself and skips only downstream TIs of its own map index, so unmapped tasks run (as in Airflow)', async () => {
    const r = await run('branch_mapped');
    expect(r.state).toBe(RunState.SUCCESS);
    expect(r.states).toEqual({ 'pick[0]': 'success', 'pick[1]': 'success', a: 'success', b: 'success' });
    expect([await r.xcom('pick', 0), await r.xcom('pick', 1)]).toEqual(['a', 'b']);
  });

  it('fails a branch that chooses a task not directly downstream of it, saying what it may choose', async () => {
    const r = await run('branch_invalid');
    expect(r.state).toBe(RunState.FAILED);
    expect(r.states).toEqual({ pick: TaskState.FAILED, a: TaskState.UPSTREAM_FAILED, b: TaskState.UPSTREAM_FAILED });
    expect(r.error('pick')).toBe('InvalidBranchError: branch task "pick" of DAG "branch_invalid" chose "nope", which is not a task (or task group) directly downstream of it; return one of "a", "b".');
  });

  it('inside a task group, ids are full ids; a relative one fails with the full id suggested', async () => {
    const r = await run('branch_relative');
    expect(r.state).toBe(RunState.FAILED);
    expect(r.error('g.pick')).toContain('chose "a", which is not a task (or task group) directly downstream of it; return one of "g.a", "g.b". Did you mean "g.a"?');
  });
});
