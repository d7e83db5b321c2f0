/**
 * `task(options, fn)`: the TaskFlow entry point. Calling the factory inside a DAG builder adds
 * one task; `partial(...).expand(...)`, `expandKwargs(...)` and `iterate(...)` fan it out.
 */
import { XComArg, type TaskOptions } from './operator.ts';
import { currentDag } from './build-context.ts';
import { FunctionOperator, findXComArgs, uniqueTaskId, type TaskFn, type ResolvableInput, type Resolvable } from './function-task.ts';
import { IterateOperator, MappedFunctionOperator, type ExpandSpec, type IterateOptions, type IterateResult } from './mapping.ts';
import { parseDuration } from './duration.ts';
import { DagDefinitionError } from '../errors.ts';
import { branchTask, shortCircuitTask } from './branching.ts';
import { sensorTask } from '../sensors/function-sensor.ts';

export interface PartialTask<I, R> {
  /** One TI per item (per combination, when several inputs are expanded). */
  expand(spec: ExpandSpec<I>, overrides?: Partial<TaskOptions>): XComArg<Awaited<R>[]>;
  /** One TI per input object. */
  expandKwargs(source: Resolvable<Partial<I>[]>, overrides?: Partial<TaskOptions>): XComArg<Awaited<R>[]>;
  /** Every item inside one TI, `concurrency` at a time, with per-item retries and checkpoints. */
  iterate(spec: ExpandSpec<I>, options: IterateOptions & { tolerateFailures: true }, overrides?: Partial<TaskOptions>): XComArg<IterateResult<Awaited<R>>>;
  iterate(spec: ExpandSpec<I>, options?: IterateOptions, overrides?: Partial<TaskOptions>): XComArg<Awaited<R>[]>;
}

export type FunctionTask<I, R> = ([I] extends [void]
  ? (input?: undefined, overrides?: Partial<TaskOptions>) => XComArg<Awaited<R>>
  : (input: ResolvableInput<I>, overrides?: Partial<TaskOptions>) => XComArg<Awaited<R>>) & PartialTask<I, R> & {
  readonly taskId: string;
  readonly fn: TaskFn<I, R>;
  /** Fix some inputs for every mapped item. */
  partial(constants: Partial<ResolvableInput<I>>): PartialTask<I, R>;
};

export function task<I extends object | void = void, R = unknown>(
  options: string | TaskOptions,
  fn: TaskFn<I, R>,
): FunctionTask<I, R> {
  const base: TaskOptions = typeof options === 'string' ? { taskId: options } : options;
  const opts = (overrides?: Partial<TaskOptions>) => {
    const dag = currentDag(`task "${base.taskId}"`);
    return { ...base, ...overrides, taskId: uniqueTaskId(dag, overrides?.taskId ?? base.taskId) };
  };
  const factory = (input?: unknown, overrides?: Partial<TaskOptions>) => {
    const op = new FunctionOperator(opts(overrides), fn, input);
    for (const ref of findXComArgs(input)) ref.then(op);
    return new XComArg(op);
  };
  const partial = (constants: Record<string, unknown>): PartialTask<I, R> => ({
    expand: (spec, overrides) => {
      const op = new MappedFunctionOperator(opts(overrides), fn, constants, { kind: 'expand', spec: spec as Record<string, unknown> });
      for (const ref of findXComArgs(constants)) ref.then(op);
      return new XComArg(op) as XComArg<Awaited<R>[]>;
    },
    expandKwargs: (source, overrides) => {
      const op = new MappedFunctionOperator(opts(overrides), fn, constants, { kind: 'expandKwargs', source });
      for (const ref of findXComArgs(constants)) ref.then(op);
      return new XComArg(op) as XComArg<Awaited<R>[]>;
    },
    iterate: ((spec: Record<string, unknown>, options: IterateOptions = {}, overrides?: Partial<TaskOptions>) => {
      const op = new IterateOperator(opts(overrides), fn, constants, spec, resolveIterateOptions(base.taskId, options));
      for (const ref of findXComArgs({ constants, spec })) ref.then(op);
      return new XComArg(op);
    }) as PartialTask<I, R>['iterate'],
  });
  const unbound = partial({});
  return Object.assign(factory, {
    taskId: base.taskId, fn, partial: partial as FunctionTask<I, R>['partial'],
    expand: unbound.expand, expandKwargs: unbound.expandKwargs, iterate: unbound.iterate,
  }) as unknown as FunctionTask<I, R>;
}

task.branch = branchTask;
task.shortCircuit = shortCircuitTask;
task.sensor = sensorTask;

function resolveIterateOptions(taskId: string, o: IterateOptions) {
  const ms = (v: number | string | undefined, fallback: number, what: string) => {
    if (v === undefined) return fallback;
    const n = typeof v === 'number' ? v : parseDuration(v);
    if (n === null || n < 0) throw new DagDefinitionError(null, `iterate() ${what} "${String(v)}" is not a duration; use milliseconds or a string like "1s"`, taskId);
    return n;
  };
  const concurrency = o.concurrency ?? 64;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new DagDefinitionError(null, `iterate() concurrency must be a positive integer, got ${concurrency}`, taskId);
  const itemRetries = o.itemRetries ?? 2;
  if (!Number.isInteger(itemRetries) || itemRetries < 0) throw new DagDefinitionError(null, `iterate() itemRetries must be an integer ≥ 0, got ${itemRetries}`, taskId);
  return {
    concurrency, itemRetries, tolerateFailures: o.tolerateFailures ?? false,
    itemRetryDelayMs: ms(o.itemRetryDelay, 1000, 'itemRetryDelay'), checkpointEveryMs: ms(o.checkpointEvery, 1000, 'checkpointEvery'),
  };
}
