/**
 * Authoring datasets: URIs and conditions are validated where they are written (error class and
 * message), a DAG takes a dataset, a list of datasets or an any()/all() condition as its
 * schedule, tasks take outlets (directly, on operators and through defaultArgs), and conditions
 * evaluate as Airflow's do.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  BaseOperator, DagDefinitionError, Dataset, InvalidDatasetConditionError, InvalidDatasetEventError, InvalidDatasetUriError,
  all, any, conditionHolds, conditionUris, dag, dataset, describeCondition, task, type DatasetCondition,
} from '../../core/index.ts';
import { outletEvent, withDeclaredOutlets } from '../../core/authoring/dataset.ts';

const HINT = 'use a URI with a scheme and no whitespace, such as "s3://bucket/orders.parquet" or "file:///data/orders.csv"';

function thrown<E extends Error>(cls: new (...args: never[]) => E, fn: () => unknown): E {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(cls);
    return err as E;
  }
  throw new Error(`expected ${cls.name}, but nothing was thrown`);
}

class Publish extends BaseOperator {
  execute(): unknown {
    return null;
  }
}

const a = dataset('s3://bucket/a');
const b = dataset('s3://bucket/b');
const c = dataset('file:///data/c.csv');

describe('dataset(uri)', () => {
  it('keeps a URI with a scheme as written', () => {
    expect(dataset('s3://bucket/orders.parquet').uri).toBe('s3://bucket/orders.parquet');
    expect(dataset('postgres://db/schema/table').toString()).toBe('postgres://db/schema/table');
    expect(new Dataset('urn:updraft:orders').uri).toBe('urn:updraft:orders');
  });

  it.each([
    ['s3://bucket/my file.csv', 'invalid dataset URI "s3://bucket/my file.csv": it contains whitespace'],
    ['orders.csv', 'invalid dataset URI "orders.csv": it has no scheme (such as "s3:" or "file:")'],
    ['s3:', 'invalid dataset URI "s3:": it has no scheme (such as "s3:" or "file:")'],
    ['', 'invalid dataset URI "": it is empty'],
    [`s3://${'x'.repeat(3000)}`, `invalid dataset URI "s3://${'x'.repeat(115)}…": it is longer than 3000 characters`],
    [42, 'invalid dataset URI 42: it is not a string'],
  ])('rejects %j, naming the value', (uri, message) => {
    const err = thrown(InvalidDatasetUriError, () => dataset(uri as string));
    expect(err.message).toBe(`${message}; ${HINT}`);
    expect(err.uri).toBe(uri);
  });
});

describe('any() and all()', () => {
  it('need at least one member', () => {
    expect(thrown(InvalidDatasetConditionError, () => all()).message).toBe('all() needs at least one dataset or condition');
    expect(thrown(InvalidDatasetConditionError, () => any()).message).toBe('any() needs at least one dataset or condition');
  });

  it('take datasets and nested conditions only', () => {
    const err = thrown(InvalidDatasetConditionError, () => any(a, 's3://bucket/b' as unknown as Dataset));
    expect(err.message).toBe('any() got "s3://bucket/b" as argument 2; pass datasets made with dataset(uri), or nested any()/all()');
  });

  it('hold as Airflow\'s DatasetAll and DatasetAny do', () => {
    const cond = any(all(a, b), c);
    const holds = (...uris: string[]) => conditionHolds(cond, new Set(uris));
    expect([holds(), holds(a.uri), holds(b.uri), holds(a.uri, b.uri), holds(c.uri), holds(a.uri, 's3://other')]).toEqual([false, false, false, true, true, false]);
    expect(conditionHolds(a, new Set([a.uri]))).toBe(true);
    expect(conditionUris(any(a, all(a, b), c))).toEqual([a.uri, b.uri, c.uri]);
    expect(describeCondition(cond)).toBe('any(all(s3://bucket/a, s3://bucket/b), file:///data/c.csv)');
  });
});

describe('a DAG scheduled on datasets', () => {
  const scheduled = (schedule: DatasetCondition | readonly Dataset[]) => dag({ dagId: 'consumer', schedule }, () => {});

  it('takes a dataset, a list (all of them) or a condition, and needs no startDate', () => {
    expect(scheduled(a).datasetSchedule).toBe(a);
    expect(describeCondition(scheduled([a, b]).datasetSchedule!)).toBe('all(s3://bucket/a, s3://bucket/b)');
    const d = scheduled(any(a, all(b, c)));
    expect(d.schedule).toBeNull();
    expect(d.serialize()).toMatchObject({ schedule: null, datasetSchedule: { any: [{ uri: a.uri }, { all: [{ uri: b.uri }, { uri: c.uri }] }] } });
    expect(dag({ dagId: 'cron', schedule: '@daily', startDate: '2024-01-01' }, () => {}).serialize()).toMatchObject({ schedule: '0 0 * * *', datasetSchedule: null });
  });

  it('rejects a list with anything but datasets, and an empty list', () => {
    let err = thrown(DagDefinitionError, () => scheduled([a, any(b, c)] as unknown as Dataset[]));
    expect(err.message).toBe('DAG "consumer": invalid schedule: element 2 of the schedule list is an instance of DatasetAny, not a dataset; '
      + 'a list holds datasets only (nest conditions with any()/all())');
    err = thrown(DagDefinitionError, () => scheduled([]));
    expect(err.message).toBe('DAG "consumer": invalid schedule: the schedule is an empty list of datasets; use null for manual runs only');
  });

  it('rejects a schedule of another kind', () => {
    const err = thrown(DagDefinitionError, () => dag({ dagId: 'odd', schedule: 42 as unknown as string }, () => {}));
    expect(err.message).toBe('DAG "odd": invalid DAG arguments: schedule: schedule is a cron string, a preset such as "@daily", null, '
      + 'a dataset, a list of datasets, or any()/all() of datasets');
  });

  it('needs params that accept an empty conf, as a cron-scheduled DAG does', () => {
    const err = thrown(DagDefinitionError, () => dag({ dagId: 'strict', schedule: a, params: z.object({ n: z.number() }) }, () => {}));
    expect(err.message).toMatch(/^DAG "strict": params schema rejects an empty conf, so scheduled runs could never start/);
  });
});

describe('outlets', () => {
  it('are declared on function tasks and operators, or for every task through defaultArgs', () => {
    const d = dag({ dagId: 'producer', defaultArgs: { outlets: [c] } }, () => {
      task({ taskId: 'fn', outlets: [a, b] }, async () => 1)();
      new Publish({ taskId: 'op', outlets: [b] });
      new Publish({ taskId: 'inherits' });
      task('none', async () => 1)(undefined, { outlets: [] });
    });
    expect(Object.fromEntries(d.serialize().tasks.map((t) => [t.taskId, t.outlets]))).toEqual({
      fn: [a.uri, b.uri], op: [b.uri], inherits: [c.uri], none: [],
    });
  });

  it('hold datasets only', () => {
    const err = thrown(DagDefinitionError, () => dag({ dagId: 'bad_outlets' }, () => {
      new Publish({ taskId: 'op', outlets: ['s3://bucket/a' as unknown as Dataset] });
    }));
    expect(err.message).toBe('DAG "bad_outlets", task "op": invalid options: outlets.0: outlets hold datasets made with dataset("scheme://...")');
  });
});

describe('events added at run time', () => {
  const at = { dagId: 'producer', taskId: 'fn' };
  const prefix = 'task "fn" of DAG "producer": ctx.outletEvents.add(): ';

  it('carry a URI and a JSON object', () => {
    expect(outletEvent(a, undefined, at)).toEqual({ uri: a.uri, extra: {} });
    expect(outletEvent(a, { rows: 3, parts: ['x'] }, at)).toEqual({ uri: a.uri, extra: { rows: 3, parts: ['x'] } });
  });

  it.each([
    ['s3://bucket/a', undefined, 'the first argument is "s3://bucket/a", not a dataset; pass dataset("scheme://...")'],
    [{ uri: 'no scheme' }, undefined, `invalid dataset URI "no scheme": it contains whitespace; ${HINT}`],
    [a, [1, 2], `extra for ${a.uri} must be a plain object of JSON values, got an array`],
    [a, 'text', `extra for ${a.uri} must be a plain object of JSON values, got "text"`],
    [a, { at: new Date(0) }, `extra for ${a.uri} cannot be stored as JSON: an instance of Date at extra.at`],
  ])('reject %j with extra %j', (target, extra, detail) => {
    const err = thrown(InvalidDatasetEventError, () => outletEvent(target, extra, at));
    expect(err.message).toBe(prefix + detail);
    expect(err.retryable).toBe(false);
  });

  it('stand in for the declared outlet of the same dataset', () => {
    const added = [{ uri: b.uri, extra: { part: 1 } }, { uri: b.uri, extra: { part: 2 } }, { uri: c.uri, extra: {} }];
    expect(withDeclaredOutlets([a.uri, b.uri, a.uri], added)).toEqual([{ uri: a.uri, extra: {} }, ...added]);
  });
});
