/**
 * `dag(options, build)`: the DAG object a DAG file exports. It validates its arguments with
 * zod, collects the tasks created while `build` runs, checks the graph (duplicates, unknown
 * upstreams, cycles) and serializes to the plain form stored in the `dags` table.
 */
import { z } from 'zod';
import { DagDefinitionError, InvalidConfError } from '../errors.ts';
import { withDag, withGroup, qualifyTaskId, currentDag, type BuildTarget } from './build-context.ts';
import { BaseOperator, formatZodIssues, type TaskGroupRef, type TaskOptions } from './operator.ts';
import { validateSchedule, presetToCron } from './schedule.ts';
import { timetableError } from './timetables.ts';
import { findXComArgs } from './function-task.ts';
import { callbacksSchema, callbackList, CALLBACK_OPTION, type CallbackKind, type DagCallback, type DagCallbacks } from './callbacks.ts';
import { MappedFunctionOperator, IterateOperator } from './mapping.ts';
import type { TriggerRule } from './trigger-rules.ts';
import { tagLimitSchema, tagLimitKeys, type TagLimit } from './limits.ts';
import { isDatasetSchedule, scheduleCondition, serializeCondition, type DatasetCondition, type DatasetSchedule, type SerializedCondition } from './dataset.ts';

const DAG_ID = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$/;
const dateLike = z.union([z.date(), z.string()]).transform((v, ctx) => {
  if (v instanceof Date) return v;
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a date; use an ISO 8601 string such as "2024-01-01T00:00:00Z"` });
    return z.NEVER;
  }
  return d;
});

const dagOptionsSchema = z.object({
  dagId: z.string().regex(DAG_ID, 'DAG ids use letters, digits, "_", "-" and "."'),
  schedule: z.custom<string | DatasetSchedule | null>((v) => v === null || typeof v === 'string' || isDatasetSchedule(v),
    'schedule is a cron string, a preset such as "@daily", null, a dataset, a list of datasets, or any()/all() of datasets').default(null),
  timezone: z.string().default('UTC'),
  startDate: dateLike.nullable().default(null),
  endDate: dateLike.nullable().default(null),
  catchup: z.boolean().default(false),
  isPausedUponCreation: z.boolean().default(false),
  maxActiveRuns: z.number().int().positive().default(16),
  maxActiveTasks: z.number().int().positive().default(16),
  tags: z.array(z.string()).default([]),
  defaultArgs: z.record(z.string(), z.unknown()).default({}),
  params: z.custom<z.ZodType>((v) => v instanceof z.ZodType, 'params must be a zod schema, e.g. z.object({ limit: z.number().default(10) })').nullable().default(null),
  description: z.string().nullable().default(null),
  maxActiveTasksPerRun: z.number().int().positive().nullable().default(null),
  tagConcurrencyLimits: z.array(tagLimitSchema).default([]),
  runTags: z.record(z.string(), z.string()).default({}),
  templateSearchPath: z.array(z.string()).default([]),
  userDefinedMacros: z.record(z.string(), z.unknown()).default({}),
  userDefinedFilters: z.record(z.string(), z.custom<(...args: any[]) => unknown>((v) => typeof v === 'function', 'filters are functions')).default({}),
  onSuccessCallback: callbacksSchema,
  onFailureCallback: callbacksSchema,
}).strict();

export interface DagOptions<P extends z.ZodType = z.ZodType> {
  dagId: string;
  /**
   * Cron string, a preset (@hourly, @daily, @weekly, @monthly, @yearly), a duration such as
   * "30m" (intervals from startDate), "@once", "@continuous" (needs maxActiveRuns: 1), null for manual runs
   * only, or datasets: a dataset, a list of datasets (all of them), or an any()/all() condition.
   */
  schedule?: string | null | DatasetSchedule;
  /** IANA zone the cron is evaluated in; DST shifts follow it. */
  timezone?: string;
  startDate?: Date | string | null;
  endDate?: Date | string | null;
  catchup?: boolean;
  /** A DAG first seen by a scheduler starts paused (`updraft dags unpause` starts it). */
  isPausedUponCreation?: boolean;
  maxActiveRuns?: number;
  maxActiveTasks?: number;
  tags?: string[];
  defaultArgs?: Partial<Omit<TaskOptions, 'taskId'>>;
  params?: P;
  description?: string;
  /** Executor-level limit: at most this many TIs of one run at once. */
  maxActiveTasksPerRun?: number | null;
  /** Tag limits applied within each run, over task `tags`. */
  tagConcurrencyLimits?: TagLimit[];
  /** Tags every run of this DAG carries (matched by the run queue's tag limits). */
  runTags?: Record<string, string>;
  /** Folders searched for template files (`.sql`, ...) after the DAG file's own folder; relative to it. */
  templateSearchPath?: string[];
  /** Names (values or functions) templates can use, top-level and under `macros`. */
  userDefinedMacros?: Record<string, unknown>;
  /** Extra template filters: `{{ value | myFilter }}`. */
  userDefinedFilters?: Record<string, (...args: any[]) => unknown>;
  /** Called on a worker when a run ends in success. */
  onSuccessCallback?: DagCallbacks;
  /** Called on a worker when a run ends failed. */
  onFailureCallback?: DagCallbacks;
}

export interface SerializedTask {
  taskId: string;
  operator: string;
  mode: 'sync' | 'async';
  upstream: string[];
  downstream: string[];
  triggerRule: TriggerRule;
  retries: number;
  retryDelayMs: number;
  retryExponentialBackoff: boolean;
  maxRetryDelayMs: number | null;
  executionTimeoutMs: number | null;
  pool: string;
  poolSlots: number;
  priorityWeight: number;
  queue: string;
  groupId: string | null;
  /** The task starts deferred on its start trigger, without a worker. */
  startFromTrigger: boolean;
  /** Kinds of callback the task has: the triggerer queues them for the TIs it ends. */
  callbacks: CallbackKind[];
  /** 'expand': one TI per item, created when the list exists; 'iterate': all items in one TI. */
  mapped: 'expand' | 'iterate' | null;
  /** URIs of the datasets the task updates. */
  outlets: string[];
  /** Setup / teardown role (clearing a task clears its setups and teardowns too). */
  setup: boolean;
  teardown: boolean;
  onFailureFailDagrun: boolean;
  /** dependsOnPast, or waitForDownstream (which implies it): the TI waits on the previous run. */
  dependsOnPast: boolean;
  waitForDownstream: boolean;
}

export interface SerializedDag {
  dagId: string;
  fileloc: string;
  schedule: string | null;
  datasetSchedule: SerializedCondition | null;
  timezone: string;
  startDate: string | null;
  endDate: string | null;
  catchup: boolean;
  maxActiveRuns: number;
  maxActiveTasks: number;
  tags: string[];
  description: string | null;
  tasks: SerializedTask[];
}

export class Dag<P extends z.ZodType = z.ZodType> implements BuildTarget {
  readonly dagId: string;
  /** The cron expression (presets resolved), or null: manual or dataset-scheduled. */
  readonly schedule: string | null;
  /** The dataset condition a dataset-scheduled DAG waits for (a list became all()). */
  readonly datasetSchedule: DatasetCondition | null;
  readonly timezone: string;
  readonly startDate: Date | null;
  readonly endDate: Date | null;
  readonly catchup: boolean;
  readonly isPausedUponCreation: boolean;
  readonly maxActiveRuns: number;
  readonly maxActiveTasks: number;
  readonly tags: string[];
  readonly defaultArgs: Record<string, unknown>;
  readonly params: P | null;
  readonly description: string | null;
  readonly maxActiveTasksPerRun: number | null;
  readonly tagConcurrencyLimits: TagLimit[];
  readonly runTags: Record<string, string>;
  readonly templateSearchPath: readonly string[];
  readonly userDefinedMacros: Readonly<Record<string, unknown>>;
  readonly userDefinedFilters: Readonly<Record<string, (...args: any[]) => unknown>>;
  /** Run callbacks by the run's final state. */
  readonly runCallbacks: { readonly success: readonly DagCallback[]; readonly failed: readonly DagCallback[] };
  readonly tasks = new Map<string, BaseOperator>();
  /** Set by the loader: the file this DAG came from. */
  fileloc = '<unknown>';
  /** Set by the loader: which version of the file (threads import the same one). */
  fileVersion = '0';

  constructor(options: DagOptions<P>) {
    const parsed = dagOptionsSchema.safeParse(options ?? {});
    const id = typeof options?.dagId === 'string' ? options.dagId : null;
    if (!parsed.success) throw new DagDefinitionError(id, `invalid DAG arguments: ${formatZodIssues(parsed.error)}`);
    const o = parsed.data;
    this.dagId = o.dagId;
    const cron = typeof o.schedule === 'string' ? o.schedule : null;
    this.schedule = cron === null ? null : presetToCron(cron);
    try {
      this.datasetSchedule = o.schedule === null || typeof o.schedule === 'string' ? null : scheduleCondition(o.schedule);
    } catch (err) {
      throw new DagDefinitionError(this.dagId, `invalid schedule: ${(err as Error).message}`);
    }
    this.timezone = o.timezone;
    this.startDate = o.startDate;
    this.endDate = o.endDate;
    this.catchup = o.catchup;
    this.isPausedUponCreation = o.isPausedUponCreation;
    this.maxActiveRuns = o.maxActiveRuns;
    this.maxActiveTasks = o.maxActiveTasks;
    this.tags = o.tags;
    this.defaultArgs = o.defaultArgs;
    this.params = o.params as P | null;
    this.description = o.description;
    this.maxActiveTasksPerRun = o.maxActiveTasksPerRun;
    this.tagConcurrencyLimits = o.tagConcurrencyLimits;
    this.runTags = o.runTags;
    this.templateSearchPath = o.templateSearchPath;
    this.userDefinedMacros = o.userDefinedMacros;
    this.userDefinedFilters = o.userDefinedFilters;
    this.runCallbacks = { success: callbackList(o.onSuccessCallback as DagCallbacks | undefined), failed: callbackList(o.onFailureCallback as DagCallbacks | undefined) };

    const scheduleError = validateSchedule(cron, o.timezone) ?? (cron === null ? null : timetableError(cron, o.maxActiveRuns));
    if (scheduleError) throw new DagDefinitionError(this.dagId, scheduleError);
    if (this.schedule && !this.startDate) {
      throw new DagDefinitionError(this.dagId, `a scheduled DAG needs a startDate (schedule "${cron}")`);
    }
    if (this.params && (this.schedule || this.datasetSchedule)) {
      const probe = this.params.safeParse({});
      if (!probe.success) {
        throw new DagDefinitionError(this.dagId, `params schema rejects an empty conf, so scheduled runs could never start; give every param a default (${formatZodIssues(probe.error)})`);
      }
    }
  }

  addTask(op: BaseOperator): void {
    if (this.tasks.has(op.taskId)) throw new DagDefinitionError(this.dagId, 'duplicate task id', op.taskId);
    this.tasks.set(op.taskId, op);
  }

  hasTask(taskId: string): boolean {
    return this.tasks.has(taskId);
  }

  task(taskId: string): BaseOperator | undefined {
    return this.tasks.get(taskId);
  }

  /** Parse a run's conf with the params schema; throws InvalidConfError with zod's issues. */
  parseConf(conf: Record<string, unknown>): Record<string, unknown> {
    if (!this.params) return conf;
    const parsed = this.params.safeParse(conf);
    if (!parsed.success) throw new InvalidConfError(this.dagId, formatZodIssues(parsed.error), parsed.error.issues.map((i) => ({ path: i.path.map(String), message: i.message })));
    return parsed.data as Record<string, unknown>;
  }

  /** Graph checks run once the builder returns. */
  validate(): void {
    for (const op of this.tasks.values()) {
      for (const up of op.upstreamIds) {
        if (!this.tasks.has(up)) throw new DagDefinitionError(this.dagId, `unknown upstream task "${up}"`, op.taskId);
      }
      for (const ref of findXComArgs(op.inputs())) {
        if (ref.operator.dagId !== this.dagId) {
          throw new DagDefinitionError(this.dagId, `uses the output of task "${ref.operator.taskId}" from another DAG "${ref.operator.dagId}"`, op.taskId);
        }
      }
    }
    const cycle = findCycle(this.tasks.keys(), (id) => this.tasks.get(id)?.downstreamIds ?? []);
    if (cycle) throw new DagDefinitionError(this.dagId, `cycle detected: ${cycle.join(' -> ')}`);
  }

  roots(): BaseOperator[] {
    return [...this.tasks.values()].filter((t) => t.upstreamIds.size === 0);
  }

  /** The limit keys a TI of `taskId` in run `runPk` counts against. */
  limitKeys(taskId: string, runPk: number): { key: string; limit: number }[] {
    const op = this.tasks.get(taskId);
    if (!op) return [];
    const o = op.options;
    const keys: { key: string; limit: number }[] = [];
    if (o.maxActiveTisPerDag !== null) keys.push({ key: `task:${this.dagId}.${taskId}`, limit: o.maxActiveTisPerDag });
    if (o.maxActiveTisPerDagrun !== null) keys.push({ key: `taskrun:${runPk}.${taskId}`, limit: o.maxActiveTisPerDagrun });
    if (this.maxActiveTasksPerRun !== null) keys.push({ key: `run:${runPk}`, limit: this.maxActiveTasksPerRun });
    keys.push(...tagLimitKeys(`run:${runPk}`, o.tags, this.tagConcurrencyLimits));
    return keys;
  }

  serialize(): SerializedDag {
    const weights = downstreamWeights(this.tasks);
    return {
      dagId: this.dagId,
      fileloc: this.fileloc,
      schedule: this.schedule,
      datasetSchedule: this.datasetSchedule && serializeCondition(this.datasetSchedule),
      timezone: this.timezone,
      startDate: this.startDate?.toISOString() ?? null,
      endDate: this.endDate?.toISOString() ?? null,
      catchup: this.catchup,
      maxActiveRuns: this.maxActiveRuns,
      maxActiveTasks: this.maxActiveTasks,
      tags: this.tags,
      description: this.description,
      tasks: [...this.tasks.values()].map((t) => serializeTask(t, weights.get(t.taskId) ?? 1)),
    };
  }
}

function serializeTask(t: BaseOperator, weight: number): SerializedTask {
  const o = t.options;
  return {
    taskId: t.taskId,
    operator: t.operatorName,
    mode: t.mode,
    upstream: [...t.upstreamIds].sort(),
    downstream: [...t.downstreamIds].sort(),
    triggerRule: o.triggerRule,
    retries: o.retries,
    retryDelayMs: o.retryDelay,
    retryExponentialBackoff: o.retryExponentialBackoff,
    maxRetryDelayMs: o.maxRetryDelay,
    executionTimeoutMs: o.executionTimeout,
    pool: o.pool,
    poolSlots: o.poolSlots,
    priorityWeight: weight,
    queue: o.queue,
    groupId: t.groupId,
    startFromTrigger: t.startTrigger() !== null,
    callbacks: (Object.keys(CALLBACK_OPTION) as CallbackKind[]).filter((k) => callbackList(o[CALLBACK_OPTION[k]]).length > 0),
    mapped: t instanceof MappedFunctionOperator ? 'expand' : t instanceof IterateOperator ? 'iterate' : null,
    outlets: o.outlets.map((d) => d.uri),
    setup: o.setup,
    teardown: o.teardown,
    onFailureFailDagrun: o.onFailureFailDagrun,
    dependsOnPast: o.dependsOnPast || o.waitForDownstream,
    waitForDownstream: o.waitForDownstream,
  };
}

/** Airflow's default weight rule: a task's weight plus the weights of everything downstream. */
function downstreamWeights(tasks: Map<string, BaseOperator>): Map<string, number> {
  const memo = new Map<string, Set<string>>();
  const reach = (id: string): Set<string> => {
    const hit = memo.get(id);
    if (hit) return hit;
    const out = new Set<string>();
    memo.set(id, out);
    for (const d of tasks.get(id)!.downstreamIds) {
      out.add(d);
      for (const x of reach(d)) out.add(x);
    }
    return out;
  };
  const weights = new Map<string, number>();
  for (const [id, t] of tasks) {
    let w = t.options.priorityWeight;
    for (const d of reach(id)) w += tasks.get(d)!.options.priorityWeight;
    weights.set(id, w);
  }
  return weights;
}

/** A cycle through `next` among `ids`, as the ids along it (first repeated at the end), or null. */
export function findCycle(ids: Iterable<string>, next: (id: string) => Iterable<string>): string[] | null {
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (id: string): string[] | null => {
    state.set(id, 1);
    stack.push(id);
    for (const d of next(id)) {
      if (state.get(d) === 1) return [...stack.slice(stack.indexOf(d)), d];
      if (!state.has(d)) {
        const found = visit(d);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(id, 2);
    return null;
  };
  for (const id of ids) {
    if (!state.has(id)) {
      const found = visit(id);
      if (found) return found;
    }
  }
  return null;
}

/** Define a DAG: tasks created inside `build` belong to it. Export the result from a DAG file. */
export function dag<P extends z.ZodType = z.ZodType>(options: DagOptions<P>, build: () => void): Dag<P> {
  const d = new Dag(options);
  withDag(d, build);
  d.validate();
  return d;
}

/** Group tasks under a shared id prefix; the group links like a task (its roots and leaves). */
export function taskGroup(groupId: string, build: () => void): TaskGroupRef {
  const prefix = qualifyTaskId(groupId);
  const members: BaseOperator[] = [];
  const target = currentDag('taskGroup()');
  const before = new Set(target.tasks.keys());
  withGroup(groupId, build);
  for (const [id, op] of target.tasks) if (!before.has(id) && id.startsWith(`${prefix}.`)) members.push(op);
  const inGroup = new Set(members.map((m) => m.taskId));
  return {
    groupId: prefix,
    roots: () => members.filter((m) => ![...m.upstreamIds].some((u) => inGroup.has(u))),
    leaves: () => members.filter((m) => ![...m.downstreamIds].some((d) => inGroup.has(d))),
  };
}
