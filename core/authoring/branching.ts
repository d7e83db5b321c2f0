/**
 * Branching and short-circuiting, as Airflow's BranchMixIn and ShortCircuitOperator. Such a task
 * succeeds like any other; then `decideSkips` says which downstream TIs it did not choose, and
 * the worker skips them in the transaction that records the success. Trigger rules decide
 * everything further downstream (a join with `none_failed_min_one_success` runs, an
 * `all_success` task after a skipped one is skipped in turn).
 */
import { BaseOperator, baseOptions, type TaskOptions, type XComArg } from './operator.ts';
import type { Context } from './context.ts';
import type { Dag } from './dag.ts';
import { task, type FunctionTask, type PartialTask } from './task.ts';
import type { TaskFn } from './function-task.ts';
import { InvalidBranchError } from '../errors.ts';

/** What a branch callable returns: task ids or task group ids to follow (full ids, group prefix included). */
export type BranchTarget = string | readonly string[] | null | undefined;

export type SkipPolicy = { kind: 'branch' } | { kind: 'shortCircuit'; ignoreDownstreamTriggerRules: boolean };

const policies = new WeakMap<BaseOperator, SkipPolicy>();

/** The skip policy of a DAG's operator (the instance the DAG file built), or null for a plain task. */
export function skipPolicyOf(op: BaseOperator): SkipPolicy | null {
  return policies.get(op) ?? null;
}

export interface BranchOptions extends TaskOptions {
  /** Returns the task id, list of ids or task group id to follow; the other direct downstream tasks are skipped. */
  callable: (context: Context) => BranchTarget | Promise<BranchTarget>;
}

/** Airflow's BranchPythonOperator: `new BranchOperator({ taskId, callable: (ctx) => 'a' })`. */
export class BranchOperator extends BaseOperator {
  private readonly choose: BranchOptions['callable'];

  constructor(options: BranchOptions) {
    super(baseOptions(options, ['callable']));
    this.choose = options.callable;
    policies.set(this, { kind: 'branch' });
  }

  execute(context: Context): unknown {
    return this.choose(context);
  }

  protected override callable(): unknown {
    return this.choose;
  }
}

export interface ShortCircuitOptions extends TaskOptions {
  /** true (Airflow's default): a falsy result skips everything downstream, whatever its trigger rule. */
  ignoreDownstreamTriggerRules?: boolean;
}

/** `task.branch(options, fn)`: a function task whose result names the downstream tasks to follow. */
export function branchTask<I extends object | void = void, R extends BranchTarget | Promise<BranchTarget> = BranchTarget>(
  options: string | TaskOptions, fn: TaskFn<I, R>): FunctionTask<I, R> {
  return withPolicy(task<I, R>(options, fn), { kind: 'branch' });
}

/** `task.shortCircuit(options, fn)`: a falsy result skips downstream; a truthy one is its XCom. */
export function shortCircuitTask<I extends object | void = void, R = unknown>(options: string | ShortCircuitOptions, fn: TaskFn<I, R>): FunctionTask<I, R> {
  const o: ShortCircuitOptions = typeof options === 'string' ? { taskId: options } : options;
  const { ignoreDownstreamTriggerRules = true, ...rest } = o;
  return withPolicy(task<I, R>(rest, fn), { kind: 'shortCircuit', ignoreDownstreamTriggerRules });
}

function withPolicy<I, R>(t: FunctionTask<I, R>, policy: SkipPolicy): FunctionTask<I, R> {
  const mark = <X extends XComArg<unknown>>(x: X): X => {
    policies.set(x.operator, policy);
    return x;
  };
  const wrap = (p: PartialTask<I, R>): PartialTask<I, R> => ({
    expand: (spec, overrides) => mark(p.expand(spec, overrides)),
    expandKwargs: (source, overrides) => mark(p.expandKwargs(source, overrides)),
    iterate: p.iterate,
  });
  const factory = (input?: never, overrides?: Partial<TaskOptions>) => mark((t as (i?: unknown, o?: Partial<TaskOptions>) => XComArg<unknown>)(input, overrides));
  return Object.assign(factory, { taskId: t.taskId, fn: t.fn, partial: (c: never) => wrap(t.partial(c)), ...wrap(t) }) as unknown as FunctionTask<I, R>;
}

/**
 * The downstream task ids a finished TI of `op` skips, given its result: for a branch, its
 * direct downstream tasks not chosen (nor downstream of a chosen one, so a join both follows
 * and skips nothing); for a short-circuit with a falsy result, its direct downstream tasks, or
 * with `ignoreDownstreamTriggerRules` everything downstream. Teardowns are never skipped by a
 * short-circuit. Throws InvalidBranchError when a branch names a task it cannot follow.
 */
export function decideSkips(op: BaseOperator, dag: Dag, result: unknown): string[] {
  const policy = skipPolicyOf(op);
  if (!policy) return [];
  const direct = [...op.downstreamIds];
  if (policy.kind === 'shortCircuit') {
    if (result) return [];
    const ids = policy.ignoreDownstreamTriggerRules ? [...descendants(dag, direct)] : direct;
    return ids.filter((id) => !dag.tasks.get(id)?.isTeardown);
  }
  const chosen = branchIds(op, result);
  const followed = new Set<string>();
  for (const id of chosen) {
    const roots = dag.tasks.has(id) ? [id] : groupRoots(dag, id);
    if (!roots.length || roots.some((r) => !op.downstreamIds.has(r))) throw notFollowable(op, dag, id);
    for (const r of roots) followed.add(r);
  }
  for (const id of descendants(dag, [...followed])) followed.add(id);
  return direct.filter((id) => !followed.has(id));
}

function branchIds(op: BaseOperator, result: unknown): string[] {
  if (result === null || result === undefined) return [];
  if (typeof result === 'string') return [result];
  if (Array.isArray(result) && result.every((r) => typeof r === 'string')) return result;
  throw new InvalidBranchError(op.dagId, op.taskId, `returned ${JSON.stringify(result)}; return a task id, a task group id, a list of them, or null to skip every branch`);
}

function notFollowable(op: BaseOperator, dag: Dag, id: string): InvalidBranchError {
  const options = [...op.downstreamIds].sort().map((d) => `"${d}"`).join(', ') || '(none: link the branches downstream of it)';
  const prefixed = op.groupId ? `${op.groupId}.${id}` : null;
  const hint = prefixed && (op.downstreamIds.has(prefixed) || groupRoots(dag, prefixed).length)
    ? ` Did you mean "${prefixed}"? Ids inside a task group carry the group prefix, as in Airflow.`
    : '';
  return new InvalidBranchError(op.dagId, op.taskId,
    `chose "${id}", which is not a task (or task group) directly downstream of it; return one of ${options}.${hint}`);
}

/** The roots of task group `groupId` (members with no upstream inside it), or [] if no such group. */
function groupRoots(dag: Dag, groupId: string): string[] {
  const members = [...dag.tasks.values()].filter((t) => t.groupId !== null && (t.groupId === groupId || t.groupId.startsWith(`${groupId}.`)));
  const inGroup = new Set(members.map((m) => m.taskId));
  return members.filter((m) => ![...m.upstreamIds].some((u) => inGroup.has(u))).map((m) => m.taskId);
}

/** Every task downstream of `from`, transitively, `from` included. */
export function descendants(dag: Dag, from: Iterable<string>): Set<string> {
  const seen = new Set<string>();
  const stack = [...from];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const d of dag.tasks.get(id)?.downstreamIds ?? []) stack.push(d);
  }
  return seen;
}
