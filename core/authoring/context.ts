/**
 * What every task receives at run time. The shape is the same for async tasks on the worker's
 * loop and for sync tasks in a worker thread; only plain data crosses into threads.
 */
import type { DeferOptions } from './deferral.ts';
import type { Connection } from '../connections/connection.ts';
import type { Dataset } from './dataset.ts';

export interface VariableOptions<T> {
  /** Returned when the variable is not defined anywhere (else the lookup throws). */
  default?: T;
  /** Parse the value as JSON. */
  json?: boolean;
}

export interface TaskLogger {
  info(message: string, ...args: unknown[]): void;
  warn(message: string, ...args: unknown[]): void;
  error(message: string, ...args: unknown[]): void;
  debug(message: string, ...args: unknown[]): void;
}

export interface TaskInstanceHandle {
  readonly dagId: string;
  readonly runId: string;
  readonly taskId: string;
  readonly mapIndex: number;
  readonly tryNumber: number;
  /** Store an extra XCom under `key` (the return value is stored as `return_value`). */
  xcomPush(key: string, value: unknown): void;
  /** Read an XCom of this run; defaults to the upstream task's return value. */
  xcomPull<T = unknown>(taskId: string, key?: string, mapIndex?: number): Promise<T | undefined>;
}

/** Dataset events a task records beyond its declared outlets, written when the try succeeds. */
export interface OutletEvents {
  /**
   * Record an event for `dataset`, with `extra` (a JSON object) attached. For a declared outlet,
   * the added events replace the one it would get by default; each call adds one event.
   */
  add(dataset: Dataset, extra?: Record<string, unknown>): void;
}

export interface Context<P = Record<string, unknown>> {
  readonly dagId: string;
  readonly runId: string;
  readonly taskId: string;
  readonly mapIndex: number;
  readonly tryNumber: number;
  readonly logicalDate: Date;
  readonly dataIntervalStart: Date | null;
  readonly dataIntervalEnd: Date | null;
  /** The DAG's params, parsed from the run's conf by the DAG's zod schema. */
  readonly params: P;
  /** The run's raw conf. */
  readonly conf: Record<string, unknown>;
  readonly ti: TaskInstanceHandle;
  /** Aborted on executionTimeout or when the task is killed; pass it to fetch, timers, etc. */
  readonly signal: AbortSignal;
  readonly log: TaskLogger;
  /** Dataset events known only at run time (a partition, a row count); kept across a deferral. */
  readonly outletEvents: OutletEvents;
  /** Defer (function tasks): the task runs again from the start with `event` set. */
  defer(options: DeferOptions): never;
  /** The trigger event this try resumed with, if it resumed from a deferral. */
  readonly event: unknown;
  /** Extra kwargs given to `defer`, when resumed. */
  readonly resumeKwargs: Record<string, unknown>;
  /**
   * How the previous try ended, on a fresh try after the first (null otherwise): its state and
   * error, e.g. `ZombieTaskError: …` when its worker was lost. Operators that start external
   * work (a BigQuery job) use it to reattach instead of starting that work twice.
   */
  readonly previousTry: PreviousTry | null;
  /** A connection, from the secrets backends, UPDRAFT_CONN_<ID> or the metadata database. Its secrets are masked in logs from then on. */
  connection(connId: string): Promise<Connection>;
  /** A variable, from the secrets backends, UPDRAFT_VAR_<KEY> or the metadata database. */
  variable<T = string>(key: string, options?: VariableOptions<T>): Promise<T>;
  /** `connection` for sync tasks, which run in a worker thread and cannot await (blocks the thread, not the worker). */
  connectionSync(connId: string): Connection;
  /** `variable` for sync tasks. */
  variableSync<T = string>(key: string, options?: VariableOptions<T>): T;
  /** Other DAGs' runs (TriggerDagRunOperator); on a worker's event loop only, absent elsewhere. */
  readonly dagRuns?: DagRunControl;
}

/** Creating and watching runs of other DAGs from a task. */
export interface DagRunControl {
  /** Queue a run of `dagId` (its params schema checks `conf`); throws UnknownDagError for a DAG not in the DAG folder. */
  trigger(dagId: string, options: { runId?: string; conf?: Record<string, unknown> }): Promise<{ runId: string; logicalDate: Date }>;
  /** A run's state, or null when there is no such run. */
  state(dagId: string, runId: string): Promise<string | null>;
}

export interface PreviousTry {
  tryNumber: number;
  state: string;
  error: string | null;
}

/** The plain-data part of a context, which is all that crosses a thread boundary. */
export interface ContextData {
  dagId: string;
  runId: string;
  taskId: string;
  mapIndex: number;
  tryNumber: number;
  logicalDate: string;
  dataIntervalStart: string | null;
  dataIntervalEnd: string | null;
  params: Record<string, unknown>;
  conf: Record<string, unknown>;
  event?: unknown;
  resumeKwargs?: Record<string, unknown>;
  previousTry?: PreviousTry | null;
}
