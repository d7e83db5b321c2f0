/**
 * The authoring side of flow control, without a database: which downstream tasks a branch or
 * short-circuit skips, how setups and teardowns are marked, linked and serialized, the
 * teardown rule, which leaves decide a run, and what a clear brings along.
 */
import { describe, expect, it } from 'vitest';
import { dag, task, chain, taskGroup, BaseOperator, BranchOperator, DagDefinitionError, InvalidBranchError } from '../../core/index.ts';
import { decideSkips } from '../../core/authoring/branching.ts';
import { evaluateTeardownRule } from '../../core/authoring/trigger-rules.ts';
import { effectiveLeaves } from '../../core/db/queries/dag-runs.ts';
import { setupsAndTeardownsToClear } from '../../core/runtime/clear-scope.ts';

class Noop extends BaseOperator {
  execute() {}
}
const noop = (taskId: string, extra: object = {}) => new Noop({ taskId, ...extra });

describe('decideSkips', () => {
  const d = dag({ dagId: 'skips', schedule: null }, () => {
    const pick = new BranchOperator({ taskId: 'pick', callable: () => 'a' });
    const g = taskGroup('g', () => { chain(noop('x'), noop('y')); });
    const a = noop('a');
    chain(pick, [a, noop('b'), g], noop('join'));
    // Directly downstream of the branch and of "a": following "a" must not skip it.
    chain([pick, a], noop('join_direct'));
    const sc = task.shortCircuit('sc', async () => false)();
    chain(sc, noop('s1'), noop('s2'));
    chain(sc, noop('td', { teardown: true }));
    const soft = task.shortCircuit({ taskId: 'soft', ignoreDownstreamTriggerRules: false }, async () => false)();
    chain(soft, noop('t1'), noop('t2'));
  });
  const pick = d.task('pick')!;

  it('skips the direct downstream tasks not chosen; a group id follows its roots', () => {
    expect(decideSkips(pick, d, 'a').sort()).toEqual(['b', 'g.x']);
    expect(decideSkips(pick, d, ['a', 'g']).sort()).toEqual(['b']);
    expect(decideSkips(pick, d, 'b').sort()).toEqual(['a', 'g.x', 'join_direct']);
    expect(decideSkips(pick, d, null).sort()).toEqual(['a', 'b', 'g.x', 'join_direct']);
  });

  it('refuses what is not directly downstream, and a result that is not ids', () => {
    expect(() => decideSkips(pick, d, 'g.y')).toThrow(InvalidBranchError);
    expect(() => decideSkips(pick, d, 'join')).toThrow('chose "join", which is not a task (or task group) directly downstream of it; return one of "a", "b", "g.x", "join_direct".');
    expect(() => decideSkips(pick, d, 42)).toThrow('returned 42; return a task id, a task group id, a list of them, or null to skip every branch');
  });

  it('a short-circuit skips everything downstream but teardowns, or only its direct downstream', () => {
    expect(decideSkips(d.task('sc')!, d, 0).sort()).toEqual(['s1', 's2']);
    expect(decideSkips(d.task('sc')!, d, 'yes')).toEqual([]);
    expect(decideSkips(d.task('soft')!, d, false)).toEqual(['t1']);
    expect(decideSkips(d.task('a')!, d, 'anything')).toEqual([]);
  });
});

describe('setup and teardown', () => {
  it('asTeardown marks the setups, links them upstream and serializes the roles', () => {
    const d = dag({ dagId: 'st', schedule: null }, () => {
      const create = task('create', async () => 1)();
      const work = noop('work');
      chain(create, work);
      work.then(noop('delete').asTeardown({ setups: create, onFailureFailDagrun: true }));
    });
    expect(d.task('create')!.isSetup).toBe(true);
    expect(d.task('delete')!.upstreamIds).toEqual(new Set(['work', 'create']));
    expect(d.serialize().tasks.find((t) => t.taskId === 'delete')).toMatchObject({ teardown: true, setup: false, onFailureFailDagrun: true });
  });

  it('a task cannot be both', () => {
    expect(() => dag({ dagId: 'both', schedule: null }, () => { noop('x', { setup: true, teardown: true }); }))
      .toThrow(new DagDefinitionError('both', 'a task cannot be both a setup and a teardown', 'x'));
  });

  it('the teardown rule waits for every upstream, then runs if a setup succeeded', () => {
    const up = (total: number, s = 0, f = 0) => ({ total, success: s, failed: f, upstreamFailed: 0, skipped: 0 });
    expect(evaluateTeardownRule(up(2, 1), up(1, 1))).toBe('wait');
    expect(evaluateTeardownRule(up(2, 1, 1), up(1, 1))).toBe('run');
    expect(evaluateTeardownRule(up(2, 0, 2), up(1, 0, 1))).toBe('skip');
    expect(evaluateTeardownRule(up(1, 0, 1), up(0))).toBe('run');
  });

  it('the run is decided by the leaves once teardowns are set aside', () => {
    const d = dag({ dagId: 'leaves', schedule: null }, () => {
      const s = noop('s');
      chain(s, noop('work'), noop('td').asTeardown({ setups: s }));
      chain(noop('s2'), noop('work2'), noop('td2', { teardown: true, onFailureFailDagrun: true }));
    });
    expect(effectiveLeaves(d).sort()).toEqual(['td2', 'work']);
  });

  it('clearing work brings its setup and teardown; clearing a setup its teardown', () => {
    const d = dag({ dagId: 'clear', schedule: null }, () => {
      const s = noop('s');
      const [w1, w2] = [noop('w1'), noop('w2')];
      chain(s, w1, w2, noop('td').asTeardown({ setups: s }));
      // A setup without a teardown is relevant to everything downstream of it.
      chain(noop('other_setup', { setup: true }), w1);
      chain(noop('unrelated'), w2);
    });
    const serialized = d.serialize();
    expect(setupsAndTeardownsToClear(serialized, 'w2').sort()).toEqual(['other_setup', 's', 'td']);
    expect(setupsAndTeardownsToClear(serialized, 's')).toEqual(['td']);
    expect(setupsAndTeardownsToClear(serialized, 'unrelated')).toEqual([]);
    expect(setupsAndTeardownsToClear({ not: 'a dag' }, 'w2')).toEqual([]);
  });
});
