/**
 * Function sensors: `FunctionSensor` (Airflow's PythonSensor) pokes a callable, and
 * `task.sensor(options, fn)` (Airflow's `@task.sensor`) makes a TaskFlow factory of one, whose
 * input may hold other tasks' outputs. The callable returns true, false, or `{ done, value }`;
 * it runs on the worker's event loop, once per poke, so keep it short and async for I/O.
 */
import { XComArg } from '../authoring/operator.ts';
import { currentDag } from '../authoring/build-context.ts';
import { findXComArgs, uniqueTaskId, type ResolvableInput } from '../authoring/function-task.ts';
import type { Context } from '../authoring/context.ts';
import { PokeSensorOperator, type PokeResult, type PokeSensorOptions } from './poke-sensor.ts';

export type PokeFn<I, R> = (input: I, context: Context<any>) => PokeResult<R> | Promise<PokeResult<R>>;

export interface FunctionSensorOptions<I = unknown, R = unknown> extends PokeSensorOptions {
  /** Called at each poke with the resolved `input` and the context. */
  callable: PokeFn<I, R>;
  /** The callable's input; task outputs (XComArgs) inside it become upstream dependencies. */
  input?: unknown;
}

export class FunctionSensor<I = unknown, R = unknown> extends PokeSensorOperator {
  readonly pokeCallable: PokeFn<I, R>;
  readonly input: unknown;
  /** This try's resolved input, set by `run` before `execute` pokes. */
  private resolved: unknown;

  constructor(options: FunctionSensorOptions<I, R>) {
    const { callable, input, ...rest } = options;
    super(rest);
    if (typeof callable !== 'function') throw this.invalid('callable must be a function returning true, false or { done, value }');
    this.pokeCallable = callable;
    this.input = input;
    for (const ref of findXComArgs(input)) ref.then(this);
  }

  override inputs(): unknown {
    return this.input;
  }

  override run(context: Context, inputs: unknown): unknown {
    this.resolved = inputs;
    return this.execute(context);
  }

  poke(context: Context): PokeResult<R> | Promise<PokeResult<R>> {
    return this.pokeCallable(this.resolved as I, context);
  }
}

export type SensorTaskOptions = PokeSensorOptions;

/** A sensor factory: calling it inside a DAG builder adds one FunctionSensor. */
export type SensorTask<I, R> = ([I] extends [void]
  ? (input?: undefined, overrides?: Partial<SensorTaskOptions>) => XComArg<R>
  : (input: ResolvableInput<I>, overrides?: Partial<SensorTaskOptions>) => XComArg<R>) & { readonly taskId: string };

/** `task.sensor(options, fn)`: the TaskFlow form of FunctionSensor. */
export function sensorTask<I extends object | void = void, R = unknown>(options: string | SensorTaskOptions, fn: PokeFn<I, R>): SensorTask<I, R> {
  const base: SensorTaskOptions = typeof options === 'string' ? { taskId: options } : options;
  const factory = (input?: unknown, overrides?: Partial<SensorTaskOptions>) => {
    const dag = currentDag(`sensor "${base.taskId}"`);
    const taskId = uniqueTaskId(dag, overrides?.taskId ?? base.taskId);
    return new XComArg<R>(new FunctionSensor<I, R>({ ...base, ...overrides, taskId, callable: fn, input }));
  };
  return Object.assign(factory, { taskId: base.taskId }) as unknown as SensorTask<I, R>;
}
