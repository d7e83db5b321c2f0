/**
 * Function tasks, TaskFlow style: `task(options, fn)` makes a factory; calling it inside a
 * DAG builder adds a task whose inputs may be other tasks' outputs. Types flow from the
 * producer's return type to the consumer's input, so a mismatch is a compile error.
 */
import { BaseOperator, XComArg, type TaskOptions } from './operator.ts';
import { currentDag, qualifyTaskId } from './build-context.ts';
import type { Context } from './context.ts';

/** A value, or a task output of that type, at any depth of arrays and plain objects. */
export type Resolvable<T> = XComArg<T> | (T extends readonly (infer U)[]
  ? readonly Resolvable<U>[]
  : T extends Record<string, unknown> ? { [K in keyof T]: Resolvable<T[K]> } : T);
export type ResolvableInput<I> = { [K in keyof I]: Resolvable<I[K]> };

export type TaskFn<I, R> = (input: I, context: Context<any>) => R;


export class FunctionOperator extends BaseOperator {
  constructor(options: TaskOptions, readonly fn: TaskFn<any, unknown>, readonly input: unknown) {
    super(options);
  }

  execute(context: Context): unknown {
    return this.fn(undefined, context);
  }

  override run(context: Context, inputs: unknown): unknown {
    return this.fn(inputs, context);
  }

  override inputs(): unknown {
    return this.input;
  }

  protected override callable(): unknown {
    return this.fn;
  }

  override get operatorName(): string {
    return '@task';
  }
}

/** Calling the same task twice in one DAG yields "id", "id__1", "id__2", as in Airflow. */
export function uniqueTaskId(dag: { hasTask(id: string): boolean }, taskId: string): string {
  const qualified = qualifyTaskId(taskId);
  if (!dag.hasTask(qualified)) return taskId;
  // The next suffix to try, per DAG and base id: probing from 1 on every call made a DAG of
  // n calls to one task quadratic to build.
  let next = nextSuffix.get(dag);
  if (!next) nextSuffix.set(dag, (next = new Map()));
  for (let i = next.get(qualified) ?? 1; ; i++) {
    if (!dag.hasTask(qualifyTaskId(`${taskId}__${i}`))) {
      next.set(qualified, i + 1);
      return `${taskId}__${i}`;
    }
  }
}

const nextSuffix = new WeakMap<object, Map<string, number>>();

/** XComArgs anywhere inside a task's input (nested in arrays and plain objects too). */
export function findXComArgs(value: unknown, found: XComArg<unknown>[] = []): XComArg<unknown>[] {
  if (value instanceof XComArg) found.push(value);
  else if (Array.isArray(value)) for (const v of value) findXComArgs(v, found);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) findXComArgs(v, found);
  }
  return found;
}

/** Replace every XComArg in `value` using `lookup`. */
export function resolveXComArgs(value: unknown, lookup: (ref: XComArg<unknown>) => unknown): unknown {
  if (value instanceof XComArg) return lookup(value);
  if (Array.isArray(value)) return value.map((v) => resolveXComArgs(v, lookup));
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveXComArgs(v, lookup)]));
  }
  return value;
}
