import { describe, expect, it } from 'vitest';
import { BaseOperator, chain, dag, task, taskGroup, type Dag, type SerializedTask } from '../../core/index.ts';
import { DEFAULT_RETRY_DELAY_MS } from '../../core/authoring/retry.ts';

class Noop extends BaseOperator {
  execute(): unknown {
    return null;
  }
}

class AsyncNoop extends BaseOperator {
  async execute(): Promise<unknown> {
    return null;
  }
}

const op = (taskId: string, priorityWeight?: number) => new Noop({ taskId, priorityWeight });
const produce = task('produce', () => 1);
const label = task('label', () => 'x');
const numbers = task('numbers', () => [1, 2, 3]);
const joinWords = task('join_words', ({ words }: { words: string[] }) => words.join(' '));
const combine = task('combine', ({ nums, meta }: { nums: number[]; meta: { label: string } }) => `${meta.label}:${nums.length}`);

const ups = (d: Dag, id: string) => [...d.task(id)!.upstreamIds].sort();
const downs = (d: Dag, id: string) => [...d.task(id)!.downstreamIds].sort();

describe('task groups', () => {
  const d = dag({ dagId: 'grouped' }, () => {
    const start = op('start');
    const grp = taskGroup('grp', () => {
      const a = produce();
      combine({ nums: [a], meta: { label: label() } });
      taskGroup('inner', () => op('deep'));
    });
    chain(start, grp, op('end'));
  });

  it('prefixes task ids with the group path', () => {
    expect([...d.tasks.keys()]).toEqual(['start', 'grp.produce', 'grp.label', 'grp.combine', 'grp.inner.deep', 'end']);
    expect(d.task('grp.produce')!.groupId).toBe('grp');
    expect(d.task('grp.inner.deep')!.groupId).toBe('grp.inner');
    expect(d.task('start')!.groupId).toBeNull();
  });

  it('links upstream tasks to the group roots and the group leaves to downstream tasks', () => {
    expect(downs(d, 'start')).toEqual(['grp.inner.deep', 'grp.label', 'grp.produce']);
    expect(ups(d, 'end')).toEqual(['grp.combine', 'grp.inner.deep']);
    expect(ups(d, 'grp.combine')).toEqual(['grp.label', 'grp.produce']);
  });

  it('exposes its qualified id, roots and leaves', () => {
    dag({ dagId: 'group_ref' }, () => {
      taskGroup('outer', () => {
        const ref = taskGroup('inner', () => {
          chain(op('x'), op('y'));
        });
        expect(ref.groupId).toBe('outer.inner');
        expect(ref.roots().map((t) => t.taskId)).toEqual(['outer.inner.x']);
        expect(ref.leaves().map((t) => t.taskId)).toEqual(['outer.inner.y']);
      });
    });
  });
});

describe('linking', () => {
  it('chain() fans out to a list and back in', () => {
    const d = dag({ dagId: 'chained' }, () => {
      chain(op('a'), [op('b'), op('c')], op('d'));
    });
    expect(downs(d, 'a')).toEqual(['b', 'c']);
    expect(ups(d, 'd')).toEqual(['b', 'c']);
    expect(ups(d, 'b')).toEqual(['a']);
  });

  it('then() returns its argument so links read left to right', () => {
    const d = dag({ dagId: 'then_chain' }, () => {
      const last = op('a').then([op('b'), op('c')]);
      expect(last.map((t) => t.taskId)).toEqual(['b', 'c']);
      produce().then(op('after_output'));
    });
    expect(downs(d, 'a')).toEqual(['b', 'c']);
    expect(ups(d, 'after_output')).toEqual(['produce']);
  });

  it('numbers repeated calls of one task factory', () => {
    const d = dag({ dagId: 'repeats' }, () => {
      produce();
      produce();
      produce(undefined, { taskId: 'custom' });
      produce();
      taskGroup('g', () => {
        produce();
        produce();
      });
    });
    expect([...d.tasks.keys()]).toEqual(['produce', 'produce__1', 'custom', 'produce__2', 'g.produce', 'g.produce__1']);
  });

  it('numbers 10,000 calls of one task in linear time', () => {
    const started = performance.now();
    const d = dag({ dagId: 'many_repeats' }, () => {
      produce(undefined, { taskId: 'produce__3' });
      for (let i = 0; i < 10_000; i++) produce();
    });
    // Probing produce__1, produce__2, … on every call took seconds here.
    expect(performance.now() - started).toBeLessThan(2000);
    expect(d.tasks.size).toBe(10_001);
    expect(d.hasTask('produce__10000')).toBe(true);
    expect([...d.tasks.keys()].slice(0, 5)).toEqual(['produce__3', 'produce', 'produce__1', 'produce__2', 'produce__4']);
  });

  it('makes every task output found in nested arrays and objects an upstream', () => {
    const d = dag({ dagId: 'nested_refs' }, () => {
      combine({ nums: [produce(), 2, produce()], meta: { label: label() } });
    });
    expect(ups(d, 'combine')).toEqual(['label', 'produce', 'produce__1']);
    expect(downs(d, 'label')).toEqual(['combine']);
  });

  it('refuses, at compile time, an output whose type does not fit the input', () => {
    dag({ dagId: 'typed' }, () => {
      // @ts-expect-error number[] is not assignable to string[]
      joinWords({ words: numbers() });
      joinWords({ words: ['plain', label()] });
    });
  });
});

describe('serialize()', () => {
  const d = dag({
    dagId: 'serialized', schedule: '@daily', startDate: '2024-01-01T00:00:00Z', timezone: 'Europe/Berlin', tags: ['t'],
    defaultArgs: { retries: 2 },
  }, () => {
    const a = op('a');
    chain(a, [op('c'), op('b')], op('d', 5));
    task({ taskId: 'fast', retryDelay: '1m30s', executionTimeout: '2h', mode: 'sync' }, async () => 1)();
    new AsyncNoop({ taskId: 'awaits' });
    task('plain', () => 1)();
    task({ taskId: 'forced', mode: 'async', retries: 0 }, () => 1)();
  });
  const s = d.serialize();
  const byId = (id: string) => s.tasks.find((t) => t.taskId === id)!;

  it('is plain JSON data', () => {
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
    expect({ ...s, tasks: s.tasks.length }).toEqual({
      dagId: 'serialized', fileloc: '<unknown>', schedule: '0 0 * * *', datasetSchedule: null, timezone: 'Europe/Berlin',
      startDate: '2024-01-01T00:00:00.000Z', endDate: null, catchup: false, maxActiveRuns: 16, maxActiveTasks: 16,
      tags: ['t'], description: null, tasks: 8,
    });
  });

  it('lists sorted upstream and downstream ids and resolved options', () => {
    expect(byId('a')).toEqual({
      taskId: 'a', operator: 'Noop', mode: 'sync', upstream: [], downstream: ['b', 'c'], triggerRule: 'all_success',
      retries: 2, retryDelayMs: DEFAULT_RETRY_DELAY_MS, retryExponentialBackoff: false, maxRetryDelayMs: null,
      executionTimeoutMs: null, pool: 'default_pool', poolSlots: 1, priorityWeight: 8, queue: 'default', groupId: null, startFromTrigger: false, callbacks: [], mapped: null, outlets: [],
      setup: false, teardown: false, onFailureFailDagrun: false, dependsOnPast: false, waitForDownstream: false,
    } satisfies SerializedTask);
    expect(byId('d').upstream).toEqual(['b', 'c']);
    expect(byId('fast')).toMatchObject({ operator: '@task', retryDelayMs: 90_000, executionTimeoutMs: 7_200_000, retries: 2 });
    expect(byId('forced').retries).toBe(0);
  });

  it('weighs each task by itself plus everything downstream, counting shared descendants once', () => {
    expect(Object.fromEntries(['a', 'b', 'c', 'd', 'plain'].map((id) => [id, byId(id).priorityWeight])))
      .toEqual({ a: 8, b: 6, c: 6, d: 5, plain: 1 });
  });

  it('runs async functions on the loop and everything else in a thread, unless mode says otherwise', () => {
    expect(Object.fromEntries(['plain', 'awaits', 'fast', 'forced', 'a'].map((id) => [id, byId(id).mode])))
      .toEqual({ plain: 'sync', awaits: 'async', fast: 'sync', forced: 'async', a: 'sync' });
  });
});
