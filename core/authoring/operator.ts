/**
 * BaseOperator: the unit of work in a DAG, and XComArg, a reference to a task's output that
 * creates a dependency when passed to another task. Constructors only record options and
 * links (a DAG file's import must do no I/O); the work happens in `execute`.
 */
import { z } from 'zod';
import { DagDefinitionError } from '../errors.ts';
import { currentDag, qualifyTaskId, currentGroupPath, type BuildTarget } from './build-context.ts';
import type { Context } from './context.ts';
import { durationSchema, type Duration } from './duration.ts';
import { DEFAULT_RETRY_DELAY_MS } from './retry.ts';
import { TriggerRule, TRIGGER_RULES } from './trigger-rules.ts';
import { TaskDeferred, type DeferOptions } from './deferral.ts';
import type { BaseTrigger } from '../triggers/base-trigger.ts';
import { Dataset } from './dataset.ts';
import { callbacksSchema, type TaskCallbacks } from './callbacks.ts';

export const ExecutionMode = { SYNC: 'sync', ASYNC: 'async' } as const;
export type ExecutionMode = (typeof ExecutionMode)[keyof typeof ExecutionMode];

export interface TaskOptions {
  taskId: string;
  retries?: number;
  retryDelay?: Duration;
  retryExponentialBackoff?: boolean;
  maxRetryDelay?: Duration | null;
  executionTimeout?: Duration | null;
  triggerRule?: TriggerRule;
  pool?: string;
  poolSlots?: number;
  priorityWeight?: number;
  queue?: string;
  /** At most this many TIs of this task run at once, across all runs. */
  maxActiveTisPerDag?: number | null;
  /** At most this many TIs of this task run at once within one run (mapped TIs, say). */
  maxActiveTisPerDagrun?: number | null;
  /** Tags matched by the DAG's tagConcurrencyLimits. */
  tags?: Record<string, string>;
  /** Override detection: run on the worker's event loop ('async') or in a worker thread ('sync'). */
  mode?: ExecutionMode;
  /** Datasets this task updates: each successful try records one event per outlet. */
  outlets?: readonly Dataset[];
  /** Called after a try succeeds (context). */
  onSuccessCallback?: TaskCallbacks;
  /** Called when the task fails for good (context, error), also when the scheduler fails it (a zombie). */
  onFailureCallback?: TaskCallbacks;
  /** Called when a try fails and a retry follows (context, error). */
  onRetryCallback?: TaskCallbacks;
  /** Called right before the task runs (each try, each resume and each reschedule poke). */
  onExecuteCallback?: TaskCallbacks;
  /** Called when the task ends skipped by its own doing (TaskSkipped, a sensor's softFail). */
  onSkippedCallback?: TaskCallbacks;
  /** A setup task: creates what the work between it and its teardowns needs. */
  setup?: boolean;
  /** A teardown task: runs once its upstreams are done if one of its setups succeeded. */
  teardown?: boolean;
  /** A teardown whose failure fails the run (by default a teardown never decides it). */
  onFailureFailDagrun?: boolean;
  /** Run only if this task's TI (same map index) in the previous run succeeded or was skipped. */
  dependsOnPast?: boolean;
  /** dependsOnPast, and the previous run's direct downstream TIs of this task succeeded or were skipped too. */
  waitForDownstream?: boolean;
}

const TASK_ID = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$/;

/**
 * An operator's options without its own keys: what goes to BaseOperator (or BaseSensorOperator).
 * Operators take one options object; their own fields are read from it and the rest passed on.
 */
export function baseOptions<O extends object, B = TaskOptions>(options: O, ownKeys: readonly string[]): B {
  const rest: Record<string, unknown> = { ...(options as Record<string, unknown>) };
  for (const k of ownKeys) delete rest[k];
  return rest as B;
}

export const taskOptionsSchema = z.object({
  taskId: z.string().regex(TASK_ID, 'task ids use letters, digits, "_", "-" and "."'),
  retries: z.number().int().nonnegative().default(0),
  retryDelay: durationSchema.default(DEFAULT_RETRY_DELAY_MS),
  retryExponentialBackoff: z.boolean().default(false),
  maxRetryDelay: durationSchema.nullable().default(null),
  executionTimeout: durationSchema.nullable().default(null),
  triggerRule: z.enum(TRIGGER_RULES as [TriggerRule, ...TriggerRule[]]).default(TriggerRule.ALL_SUCCESS),
  pool: z.string().min(1).default('default_pool'),
  poolSlots: z.number().int().min(1).default(1),
  priorityWeight: z.number().int().default(1),
  queue: z.string().min(1).default('default'),
  maxActiveTisPerDag: z.number().int().positive().nullable().default(null),
  maxActiveTisPerDagrun: z.number().int().positive().nullable().default(null),
  tags: z.record(z.string(), z.string()).default({}),
  mode: z.enum(['sync', 'async']).optional(),
  outlets: z.array(z.custom<Dataset>((v) => v instanceof Dataset, 'outlets hold datasets made with dataset("scheme://...")')).default([]),
  onSuccessCallback: callbacksSchema,
  onFailureCallback: callbacksSchema,
  onRetryCallback: callbacksSchema,
  onExecuteCallback: callbacksSchema,
  onSkippedCallback: callbacksSchema,
  setup: z.boolean().default(false),
  teardown: z.boolean().default(false),
  onFailureFailDagrun: z.boolean().default(false),
  dependsOnPast: z.boolean().default(false),
  waitForDownstream: z.boolean().default(false),
}).strict();

export type ResolvedTaskOptions = z.output<typeof taskOptionsSchema>;

const AsyncFunction = (async () => {}).constructor;
const AsyncGeneratorFunction = (async function* () {}).constructor;

/** An async function (or async method) runs on the worker's loop; anything else in a thread. */
export function isAsyncCallable(fn: unknown): boolean {
  return fn instanceof AsyncFunction || fn instanceof AsyncGeneratorFunction;
}

export type Linkable = BaseOperator | XComArg<unknown> | TaskGroupRef | readonly Linkable[];

/** What a task group exposes for linking: its entry and exit tasks. */
export interface TaskGroupRef {
  readonly groupId: string;
  roots(): BaseOperator[];
  leaves(): BaseOperator[];
}

export abstract class BaseOperator {
  /**
   * Fields rendered as templates (nunjucks, Jinja's syntax) before `execute`: strings, and
   * strings inside arrays and plain objects. Airflow's `template_fields`.
   */
  static templateFields: readonly string[] = [];
  /** A templated string ending in one of these is the path of a template file (`template_ext`). */
  static templateExt: readonly string[] = [];

  readonly taskId: string;
  readonly dagId: string;
  readonly groupId: string | null;
  readonly options: ResolvedTaskOptions;
  readonly upstreamIds = new Set<string>();
  readonly downstreamIds = new Set<string>();
  /** Default-argument-merged options as given, kept for error messages. */
  protected readonly dag: BuildTarget;

  constructor(options: TaskOptions) {
    this.dag = currentDag(`task "${options?.taskId}"`);
    const merged = { ...defaultArgsOf(this.dag), ...options };
    const parsed = taskOptionsSchema.safeParse(merged);
    if (!parsed.success) {
      throw new DagDefinitionError(this.dag.dagId, `invalid options: ${formatZodIssues(parsed.error)}`, options?.taskId ?? null);
    }
    if (parsed.data.setup && parsed.data.teardown) throw new DagDefinitionError(this.dag.dagId, 'a task cannot be both a setup and a teardown', options.taskId);
    this.options = parsed.data;
    this.taskId = qualifyTaskId(parsed.data.taskId);
    this.dagId = this.dag.dagId;
    this.groupId = currentGroupPath();
    this.dag.addTask(this);
  }

  /** The task's work. Return value becomes the `return_value` XCom. */
  abstract execute(context: Context): unknown;

  /** Entry point used by the runtime; function tasks override it to receive resolved inputs. */
  run(context: Context, _inputs: unknown): unknown {
    return this.execute(context);
  }

  /** Inputs that may hold XComArgs; resolved by the runtime before `run`. */
  inputs(): unknown {
    return undefined;
  }

  get mode(): ExecutionMode {
    if (this.options.mode) return this.options.mode;
    return isAsyncCallable(this.callable()) ? ExecutionMode.ASYNC : ExecutionMode.SYNC;
  }

  /** The callable whose kind decides sync vs async. */
  protected callable(): unknown {
    return this.execute;
  }

  get operatorName(): string {
    return this.constructor.name;
  }

  /** The operator's templated fields, as its class declares them. */
  get templateFields(): readonly string[] {
    return (this.constructor as typeof BaseOperator).templateFields;
  }

  get templateExt(): readonly string[] {
    return (this.constructor as typeof BaseOperator).templateExt;
  }

  /**
   * A fresh instance for one try or one resume: the DAG file built this operator once, and
   * state a task sets on `this` must not leak into its next resume, retry or another run.
   */
  freshInstance(): this {
    return Object.assign(Object.create(Object.getPrototypeOf(this)) as this, this);
  }

  /** `a.then(b)`: b runs after a. Returns its argument, so chains read left to right. */
  then<T extends Linkable>(next: T): T {
    link(this, next);
    return next;
  }

  output<T = unknown>(key = 'return_value'): XComArg<T> {
    return new XComArg<T>(this, key);
  }

  get isSetup(): boolean {
    return this.options.setup;
  }

  get isTeardown(): boolean {
    return this.options.teardown;
  }

  /** Mark this task a setup (Airflow's `as_setup()`). */
  asSetup(): this {
    markRole(this, { setup: true });
    return this;
  }

  /**
   * Mark this task a teardown of `setups` (each becomes a setup and an upstream of this task).
   * It runs once its upstreams are done if one of its setups succeeded, even after failures.
   */
  asTeardown(options: TeardownOptions = {}): this {
    markRole(this, { teardown: true, ...(options.onFailureFailDagrun === undefined ? {} : { onFailureFailDagrun: options.onFailureFailDagrun }) });
    for (const s of endpoints(options.setups ?? [], 'leaves')) {
      s.asSetup();
      link(s, this);
    }
    return this;
  }

  /** Suspend this task until `trigger` fires; it resumes in `method` on a fresh instance. */
  defer(options: DeferOptions): never {
    throw new TaskDeferred(options);
  }

  /**
   * Called on resume when the trigger failed or timed out (`error` is a TaskDeferralError or
   * TaskDeferralTimeout). The default rethrows, so the retry policy applies; sensors with
   * `softFail` skip instead.
   */
  onDeferralFailure(_context: Context, error: Error): unknown {
    throw error;
  }

  /**
   * Start from trigger: return a trigger here and the TI is deferred by the scheduler without
   * ever reaching a worker. Only static arguments can go into it (it runs at scheduling time).
   */
  startTrigger(): { trigger: BaseTrigger<any>; method?: string; kwargs?: Record<string, unknown>; timeout?: Duration | null } | null {
    return null;
  }
}

/** A reference to a task's XCom; passing it to another task makes that task downstream. */
export class XComArg<T> {
  declare readonly __valueType?: T;
  constructor(readonly operator: BaseOperator, readonly key = 'return_value') {}

  then<L extends Linkable>(next: L): L {
    link(this.operator, next);
    return next;
  }

  asSetup(): this {
    this.operator.asSetup();
    return this;
  }

  asTeardown(options?: TeardownOptions): this {
    this.operator.asTeardown(options);
    return this;
  }
}

export interface TeardownOptions {
  /** The setups this teardown undoes; each is marked a setup and runs before it. */
  setups?: Linkable;
  onFailureFailDagrun?: boolean;
}

function markRole(op: BaseOperator, role: Partial<Pick<ResolvedTaskOptions, 'setup' | 'teardown' | 'onFailureFailDagrun'>>): void {
  const o = op.options as ResolvedTaskOptions;
  Object.assign(o, role);
  if (o.setup && o.teardown) throw new DagDefinitionError(op.dagId, 'a task cannot be both a setup and a teardown', op.taskId);
}

function defaultArgsOf(target: BuildTarget): Record<string, unknown> {
  return (target as { defaultArgs?: Record<string, unknown> }).defaultArgs ?? {};
}

function endpoints(item: Linkable, side: 'roots' | 'leaves'): BaseOperator[] {
  if (item instanceof BaseOperator) return [item];
  if (item instanceof XComArg) return [item.operator];
  if (Array.isArray(item)) return (item as readonly Linkable[]).flatMap((i) => endpoints(i, side));
  const group = item as TaskGroupRef;
  return side === 'roots' ? group.roots() : group.leaves();
}

export function link(from: Linkable, to: Linkable): void {
  for (const up of endpoints(from, 'leaves')) {
    for (const down of endpoints(to, 'roots')) {
      if (up.dagId !== down.dagId) {
        throw new DagDefinitionError(down.dagId, `cannot depend on task "${up.taskId}" of another DAG "${up.dagId}"; use an external-task sensor instead`, down.taskId);
      }
      up.downstreamIds.add(down.taskId);
      down.upstreamIds.add(up.taskId);
    }
  }
}

/** `chain(a, b, [c, d], e)`: each step runs after the previous one. */
export function chain(...steps: Linkable[]): void {
  for (let i = 1; i < steps.length; i++) link(steps[i - 1], steps[i]);
}

export function formatZodIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}
