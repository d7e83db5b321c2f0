/**
 * Fan-out for function tasks. `t.partial({...}).expand({ key: list })` maps: one TI per item
 * (per combination when several keys are expanded), created when the list's producer finishes.
 * `expandKwargs(list)` maps over whole input objects. `iterate(...)` runs every item inside
 * ONE TI on the worker's loop with a concurrency limit, checkpointing finished items.
 * Downstream tasks receive a mapped task's results as a list in item order.
 */
import { XComArg, type TaskOptions } from './operator.ts';
import { FunctionOperator, findXComArgs, type TaskFn, type Resolvable } from './function-task.ts';
import { DagDefinitionError } from '../errors.ts';
import type { Duration } from './duration.ts';

/** The lists to map over, by input key. */
export type ExpandSpec<I> = { [K in keyof I]?: Resolvable<I[K][]> };

export type MapSource =
  | { kind: 'expand'; spec: Record<string, unknown> }
  | { kind: 'expandKwargs'; source: unknown };

export class MappedFunctionOperator extends FunctionOperator {
  constructor(options: TaskOptions, fn: TaskFn<any, unknown>, readonly partialInput: Record<string, unknown>, readonly map: MapSource) {
    super(options, fn, partialInput);
    for (const ref of findXComArgs(map.kind === 'expand' ? map.spec : map.source)) {
      ref.then(this);
    }
    const keys = map.kind === 'expand' ? Object.keys(map.spec) : [];
    const overlap = keys.filter((k) => k in partialInput);
    if (overlap.length) throw new DagDefinitionError(this.dagId, `input(s) ${overlap.join(', ')} given to both partial() and expand()`, this.taskId);
    if (map.kind === 'expand' && !keys.length) throw new DagDefinitionError(this.dagId, 'expand() needs at least one input to map over', this.taskId);
  }

  /** Everything that must be resolved before the TIs exist: the lists themselves. */
  mapInputs(): unknown {
    return this.map.kind === 'expand' ? this.map.spec : this.map.source;
  }

  override inputs(): unknown {
    return { partial: this.partialInput, map: this.mapInputs() };
  }

  override get operatorName(): string {
    return '@task.expand';
  }
}

export interface IterateOptions {
  /** Items in flight at once (default 64). */
  concurrency?: number;
  /** Retries per item, on top of the first attempt (default 2). */
  itemRetries?: number;
  /** First retry delay per item, doubled each time (default "1s"). */
  itemRetryDelay?: Duration;
  /** Return failures instead of failing the TI: `{ results, failures }`. */
  tolerateFailures?: boolean;
  /** Finished items are checkpointed a few tens of milliseconds after they finish, and at least this often (default "1s"). */
  checkpointEvery?: Duration;
}

export interface IterateResult<R> {
  results: (R | null)[];
  failures: { index: number; error: string }[];
}

export class IterateOperator extends FunctionOperator {
  constructor(options: TaskOptions, fn: TaskFn<any, unknown>, readonly partialInput: Record<string, unknown>,
    readonly spec: Record<string, unknown>, readonly iterateOptions: Required<Omit<IterateOptions, 'itemRetryDelay' | 'checkpointEvery'>> & { itemRetryDelayMs: number; checkpointEveryMs: number }) {
    super(options, fn, { partial: partialInput, map: spec });
    if (!Object.keys(spec).length) throw new DagDefinitionError(this.dagId, 'iterate() needs at least one input to iterate over', this.taskId);
  }

  override get operatorName(): string {
    return '@task.iterate';
  }
}

/** Inputs for item `index` of the cartesian product of the expanded lists (first key slowest). */
export function itemInput(partial: Record<string, unknown>, lists: [string, unknown[]][], index: number): Record<string, unknown> {
  const out: Record<string, unknown> = { ...partial };
  let rest = index;
  for (let k = lists.length - 1; k >= 0; k--) {
    const [key, list] = lists[k];
    out[key] = list[rest % list.length];
    rest = Math.floor(rest / list.length);
  }
  return out;
}

export function productLength(lists: [string, unknown[]][]): number {
  return lists.reduce((n, [, l]) => n * l.length, lists.length ? 1 : 0);
}

export { XComArg };
