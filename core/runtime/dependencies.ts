/**
 * Dependency evaluation for one DAG run: decide, from upstream states and trigger rules, which
 * waiting TIs become scheduled, skipped or upstream_failed, cascading skips and failures
 * downstream. Both the scheduler (whole runs) and the worker (the downstream of the TIs it
 * just finished, for low latency) call this, inside their transactions.
 */
import { and, eq, inArray, sql, type SQL } from 'drizzle-orm';
import { taskInstances } from '../db/schema.ts';
import type { Executor } from '../db/client.ts';
import type { Dag } from '../authoring/dag.ts';
import { evaluateTeardownRule, evaluateTriggerRule, type UpstreamCounts } from '../authoring/trigger-rules.ts';
import { TaskState } from '../model/states.ts';
import { Channel, notify, resultRows } from '../db/client.ts';
import { upsertTrigger } from '../db/queries/triggers.ts';
import { serializeTrigger } from '../triggers/registry.ts';
import { KwargsCodec } from '../triggers/secrets.ts';
import { parseDuration } from '../authoring/duration.ts';
import { MappedFunctionOperator, productLength, itemInput } from '../authoring/mapping.ts';
import { resolveMapLists } from './inputs.ts';
import { attachLimitKeys } from '../db/queries/limits.ts';
import { pastDoneCondition, previousRunPk, type PastDependency } from '../db/queries/run-dependencies.ts';
import { skippedByUpstreamChoice } from './previously-skipped.ts';

export interface EvaluateOptions {
  /** Longest list a mapped task may expand over (default 10,000). */
  maxMapLength?: number;
}

export const DEFAULT_MAX_MAP_LENGTH = 10_000;

export interface EvaluationResult {
  scheduled: number;
  skipped: number;
  upstreamFailed: number;
}

/**
 * Evaluate `candidates` (task ids) of run `runPk`; pass null to evaluate every waiting task.
 * Only TIs still in state `none` change, so concurrent evaluators never double-schedule.
 * `known` holds states already read in this transaction (from statesProbe), so a caller that
 * pipelined the read saves the round trip.
 */
export async function evaluateRun(ex: Executor, runPk: number, dag: Dag, candidates: Iterable<string> | null, opts: EvaluateOptions = {}, known?: Map<string, StateCounts>): Promise<EvaluationResult> {
  const states = new Map<string, StateCounts>(known);
  const load = async (taskIds: string[] | null) => {
    if (taskIds === null) {
      // Every task of the run: counts per task and state, one pass over the run's TIs.
      const rows = await ex.select({ taskId: taskInstances.taskId, state: taskInstances.state, n: sql<number>`count(*)::int` })
        .from(taskInstances).where(eq(taskInstances.runPk, runPk)).groupBy(taskInstances.taskId, taskInstances.state);
      for (const r of rows) {
        const c = states.get(r.taskId) ?? {};
        c[r.state] = Number(r.n);
        states.set(r.taskId, c);
      }
      return;
    }
    const ids = taskIds.filter((id) => !states.has(id));
    if (ids.length) for (const [id, c] of statesFromProbe(ids, resultRows(await ex.execute(statesProbe(runPk, ids))))) states.set(id, c);
  };
  const waiting = (id: string) => (states.get(id)?.[TaskState.NONE] ?? 0) > 0;

  let pending: string[];
  if (candidates === null) {
    await load(null);
    pending = [...states.keys()].filter(waiting);
  } else {
    pending = [...new Set(candidates)].filter((id) => dag.tasks.has(id));
    const need = new Set(pending);
    for (const id of pending) for (const up of dag.tasks.get(id)!.upstreamIds) need.add(up);
    await load([...need]);
  }

  const verdicts = { scheduled: [] as string[], skipped: [] as string[], upstream_failed: [] as string[] };
  const expansions: { taskId: string; items: unknown[] }[] = [];
  const failures: { taskId: string; error: string }[] = [];
  while (pending.length) {
    const next: string[] = [];
    const missing = new Set<string>();
    for (const id of pending) {
      if (!waiting(id)) continue;
      for (const up of dag.tasks.get(id)!.upstreamIds) if (!states.has(up)) missing.add(up);
    }
    if (missing.size) await load([...missing]);
    for (const id of pending) {
      const own = states.get(id);
      if (!own || !waiting(id)) continue;
      const op = dag.tasks.get(id)!;
      const verdict = op.isTeardown
        ? evaluateTeardownRule(countUpstream(op.upstreamIds, states), countUpstream(setupsOf(dag, op.upstreamIds), states))
        : evaluateTriggerRule(op.options.triggerRule, countUpstream(op.upstreamIds, states));
      if (verdict === 'wait') continue;
      let newState: TaskState = verdict === 'run' ? TaskState.SCHEDULED : verdict === 'skip' ? TaskState.SKIPPED : TaskState.UPSTREAM_FAILED;
      if (newState === TaskState.SCHEDULED && await skippedByUpstreamChoice(ex, runPk, dag, op, states)) newState = TaskState.SKIPPED;
      if (newState === TaskState.SCHEDULED && op instanceof MappedFunctionOperator) {
        // Mapped TIs are created now that the lists exist: one per item; none means skipped.
        const items = await mapItems(ex, runPk, op, opts.maxMapLength ?? DEFAULT_MAX_MAP_LENGTH);
        if (typeof items === 'string') {
          newState = TaskState.FAILED;
          failures.push({ taskId: id, error: items });
        } else if (items.length === 0) {
          newState = TaskState.SKIPPED;
        } else {
          expansions.push({ taskId: id, items });
          states.set(id, { [TaskState.SCHEDULED]: items.length });
          continue;
        }
      }
      own[newState] = (own[newState] ?? 0) + own[TaskState.NONE];
      own[TaskState.NONE] = 0;
      if (newState !== TaskState.FAILED) (verdicts[newState as keyof typeof verdicts]).push(id);
      // Skips and failures decide downstream tasks too; schedules wait for the TI to finish.
      if (newState !== TaskState.SCHEDULED) for (const d of op.downstreamIds) next.push(d);
    }
    pending = [...new Set(next)];
    if (pending.length) {
      const unknown = pending.filter((id) => !states.has(id));
      if (unknown.length) await load(unknown);
    }
  }

  // Start from trigger: such tasks go straight to deferred, never reaching a worker.
  const starts = verdicts.scheduled.filter((id) => dag.tasks.get(id)!.startTrigger() !== null);
  if (starts.length) {
    verdicts.scheduled = verdicts.scheduled.filter((id) => !starts.includes(id));
    await deferAtStart(ex, runPk, dag, starts);
  }
  // dependsOnPast tasks are scheduled only where the previous run's TIs allow; the rest stay none.
  const gates = await pastGates(ex, runPk, dag, [...verdicts.scheduled, ...expansions.map((e) => e.taskId)]);
  for (const [state, ids] of Object.entries(verdicts)) {
    const finished = state !== TaskState.SCHEDULED;
    const plain = finished ? ids : ids.filter((id) => !gates.has(id));
    if (plain.length) {
      await ex.update(taskInstances)
        .set(finished ? { state, endDate: sql`now()`, duration: 0 } : { state, scheduledAt: sql`now()` })
        .where(and(eq(taskInstances.runPk, runPk), inArray(taskInstances.taskId, plain), eq(taskInstances.state, TaskState.NONE)));
    }
    if (!finished) for (const id of ids) if (gates.has(id)) await scheduleWaiting(ex, runPk, id, gates.get(id)!);
  }
  for (const f of failures) {
    await ex.update(taskInstances).set({ state: TaskState.FAILED, endDate: sql`now()`, duration: 0, error: f.error })
      .where(and(eq(taskInstances.runPk, runPk), eq(taskInstances.taskId, f.taskId), eq(taskInstances.state, TaskState.NONE)));
  }
  let expanded = 0;
  for (const e of expansions) {
    const n = await expandMapped(ex, runPk, e.taskId, e.items, gates.get(e.taskId));
    // Expanded earlier, with TIs left waiting on the previous run: schedule those it allows now.
    if (n === 0) await scheduleWaiting(ex, runPk, e.taskId, gates.get(e.taskId));
    expanded += n;
  }
  if (expansions.length) await attachLimitKeys(ex, runPk, dag, expansions.map((e) => e.taskId));
  return { scheduled: verdicts.scheduled.length + expanded, skipped: verdicts.skipped.length, upstreamFailed: verdicts.upstream_failed.length };
}

/** Each mapped TI's input (its item, with the partial inputs), or an error message. */
async function mapItems(ex: Executor, runPk: number, op: MappedFunctionOperator, maxMapLength: number): Promise<unknown[] | string> {
  try {
    const { partial, lists, kwargsList } = await resolveMapLists(ex, runPk, op);
    const n = kwargsList ? kwargsList.length : productLength(lists);
    if (n > maxMapLength) {
      return `MapLengthExceeded: task "${op.taskId}" would expand to ${n} TIs, over maxMapLength ${maxMapLength}; raise UPDRAFT_MAX_MAP_LENGTH or use iterate()`;
    }
    return Array.from({ length: n }, (_, i) => (kwargsList ? { ...partial, ...kwargsList[i] } : itemInput(partial, lists, i)));
  } catch (err) {
    return `${(err as Error).name}: ${(err as Error).message}`;
  }
}

/**
 * Replace the unexpanded TI (map index -1) of a mapped task with one scheduled TI per item; with
 * a past gate, items its previous-run TI does not allow yet stay none.
 */
async function expandMapped(ex: Executor, runPk: number, taskId: string, items: unknown[], gate?: PastDependency): Promise<number> {
  const ready = gate ? pastDoneCondition(gate, sql`(e.ord - 1)::int`) : sql`true`;
  const rows = await ex.execute(sql`
    with unexpanded as (
      delete from task_instances where run_pk = ${runPk} and task_id = ${taskId} and map_index = -1 and state = ${TaskState.NONE}
      returning *
    )
    insert into task_instances (run_pk, dag_id, run_id, task_id, map_index, map_input, state, try_number, max_tries, priority_weight, pool, pool_slots, queue, operator, scheduled_at)
    select p.run_pk, p.dag_id, p.run_id, p.task_id, (e.ord - 1)::int, e.value, case when ${ready} then ${TaskState.SCHEDULED} else ${TaskState.NONE} end,
      0, p.max_tries, p.priority_weight, p.pool, p.pool_slots, p.queue, p.operator, case when ${ready} then now() end
    from unexpanded p cross join jsonb_array_elements(${JSON.stringify(items)}::jsonb) with ordinality as e(value, ord)
    returning id`);
  const list = Array.isArray(rows) ? rows : ((rows as { rows?: unknown[] }).rows ?? []);
  return list.length;
}

/** Schedule the waiting TIs of `taskId` that its past gate (if any) allows. */
async function scheduleWaiting(ex: Executor, runPk: number, taskId: string, gate: PastDependency | undefined): Promise<void> {
  await ex.update(taskInstances).set({ state: TaskState.SCHEDULED, scheduledAt: sql`now()` })
    .where(and(eq(taskInstances.runPk, runPk), eq(taskInstances.taskId, taskId), eq(taskInstances.state, TaskState.NONE), gate ? pastDoneCondition(gate) : undefined));
}

/** For the dependsOnPast / waitForDownstream tasks among `taskIds`, what they wait for in the previous run (none for a first run). */
async function pastGates(ex: Executor, runPk: number, dag: Dag, taskIds: string[]): Promise<Map<string, PastDependency>> {
  const gates = new Map<string, PastDependency>();
  const gated = taskIds.map((id) => dag.tasks.get(id)!).filter((op) => op.options.dependsOnPast || op.options.waitForDownstream);
  if (!gated.length) return gates;
  const previous = await previousRunPk(ex, runPk, dag.catchup);
  if (previous === null) return gates;
  for (const op of gated) {
    gates.set(op.taskId, { runPk, previousRunPk: previous, taskId: op.taskId, downstreamIds: op.options.waitForDownstream ? [...op.downstreamIds] : null });
  }
  return gates;
}

const pastDependent = new WeakMap<Dag, boolean>();

/** Whether a TI of this DAG may wait on the previous run (so finishing one may unblock the next run). */
export function hasPastDependencies(dag: Dag): boolean {
  let has = pastDependent.get(dag);
  if (has === undefined) {
    has = [...dag.tasks.values()].some((t) => t.options.dependsOnPast || t.options.waitForDownstream);
    pastDependent.set(dag, has);
  }
  return has;
}

/** The setups among `ids` (a teardown's upstreams). */
function setupsOf(dag: Dag, ids: Set<string>): Set<string> {
  return new Set([...ids].filter((id) => dag.tasks.get(id)?.isSetup));
}

let codec: KwargsCodec | null = null;

async function deferAtStart(ex: Executor, runPk: number, dag: Dag, taskIds: string[]): Promise<void> {
  codec ??= KwargsCodec.fromEnv();
  const triggerIds: number[] = [];
  for (const id of taskIds) {
    const op = dag.tasks.get(id)!;
    const start = op.startTrigger()!;
    const { name, kwargs } = serializeTrigger(start.trigger);
    const triggerId = await upsertTrigger(ex, name, codec.seal(kwargs), codec.hash(name, kwargs));
    triggerIds.push(triggerId);
    const timeouts = [
      start.timeout == null ? null : typeof start.timeout === 'number' ? start.timeout : parseDuration(start.timeout),
      op.options.executionTimeout,
    ].filter((x): x is number => x !== null);
    const triggerTimeout = timeouts.length ? new Date(Date.now() + Math.min(...timeouts)) : null;
    await ex.update(taskInstances).set({
      state: TaskState.DEFERRED, tryNumber: sql`${taskInstances.tryNumber} + 1`, startDate: sql`now()`, triggerId, triggerTimeout,
      nextMethod: start.method ?? 'executeComplete', nextKwargs: { kwargs: start.kwargs ?? {} },
    }).where(and(eq(taskInstances.runPk, runPk), eq(taskInstances.taskId, id), eq(taskInstances.state, TaskState.NONE)));
  }
  await notify(ex, Channel.TRIGGERER, triggerIds.join(','));
}

/** TIs per state of one task, or (from a probe) 1 for each state the task has TIs in. */
export type StateCounts = Record<string, number>;

const ALL_STATES = sql.raw(Object.values(TaskState).map((s) => `('${s}')`).join(', '));

/**
 * Which states each of `taskIds` has TIs in, in run `runPk`: one index probe per task and state,
 * however many TIs a mapped task has. Trigger rules only ask whether a kind of upstream outcome
 * exists or whether all upstream TIs are done, so presence decides exactly what counts would.
 */
export function statesProbe(runPk: number, taskIds: string[]): SQL {
  return sql`select t.task_id, s.state from (values ${sql.join(taskIds.map((id) => sql`(${id})`), sql`, `)}) as t(task_id)
    cross join (values ${ALL_STATES}) as s(state)
    -- A lateral LIMIT 1 stays a probe per pair; EXISTS may be planned as a join over every TI.
    cross join lateral (select 1 from task_instances ti where ti.run_pk = ${runPk} and ti.state = s.state and ti.task_id = t.task_id limit 1) as hit`;
}

/** statesProbe's rows as StateCounts for each probed task (empty for a task with no TIs). */
export function statesFromProbe(taskIds: string[], rows: Record<string, unknown>[]): Map<string, StateCounts> {
  const out = new Map<string, StateCounts>(taskIds.map((id) => [id, {}]));
  for (const r of rows) out.get(String(r.task_id))![String(r.state)] = 1;
  return out;
}

/** Sums over the upstream tasks' state counts (or presences), as a trigger rule reads them. */
export function countUpstream(upstream: Set<string>, states: Map<string, StateCounts>): UpstreamCounts {
  const c: UpstreamCounts = { total: 0, success: 0, failed: 0, upstreamFailed: 0, skipped: 0 };
  for (const up of upstream) {
    const s = states.get(up) ?? {};
    for (const n of Object.values(s)) c.total += n;
    c.success += s[TaskState.SUCCESS] ?? 0;
    c.failed += s[TaskState.FAILED] ?? 0;
    c.upstreamFailed += s[TaskState.UPSTREAM_FAILED] ?? 0;
    c.skipped += s[TaskState.SKIPPED] ?? 0;
  }
  return c;
}
