/**
 * Dependency evaluation for one DAG run: decide, from upstream states and trigger rules, which
 * waiting TIs become scheduled, skipped or upstream_failed, cascading skips and failures
 * downstream. Both the scheduler (whole runs) and the worker (the downstream of the TIs it
 * just finished, for low latency) call this, inside their transactions.
 */
import { and, eq, inArray, sql } from 'drizzle-orm';
import { taskInstances } from '../db/schema.ts';
import type { Executor } from '../db/client.ts';
import type { Dag } from '../authoring/dag.ts';
import { evaluateTriggerRule, type UpstreamCounts } from '../authoring/trigger-rules.ts';
import { TaskState } from './states.ts';
import { Channel, notify } from '../db/client.ts';
import { upsertTrigger } from '../db/queries/triggers.ts';
import { serializeTrigger } from '../triggers/registry.ts';
import { KwargsCodec } from '../triggers/secrets.ts';
import { parseDuration } from '../authoring/duration.ts';

export interface EvaluationResult {
  scheduled: number;
  skipped: number;
  upstreamFailed: number;
}

/**
 * Evaluate `candidates` (task ids) of run `runPk`; pass null to evaluate every waiting task.
 * Only TIs still in state `none` change, so concurrent evaluators never double-schedule.
 */
export async function evaluateRun(ex: Executor, runPk: number, dag: Dag, candidates: Iterable<string> | null): Promise<EvaluationResult> {
  const states = new Map<string, string[]>();
  const load = async (taskIds: string[] | null) => {
    const where = taskIds === null
      ? eq(taskInstances.runPk, runPk)
      : and(eq(taskInstances.runPk, runPk), inArray(taskInstances.taskId, taskIds));
    const rows = await ex.select({ taskId: taskInstances.taskId, state: taskInstances.state }).from(taskInstances).where(where);
    for (const id of taskIds ?? []) states.set(id, []);
    for (const r of rows) {
      const list = states.get(r.taskId);
      if (list) list.push(r.state); else states.set(r.taskId, [r.state]);
    }
  };

  let pending: string[];
  if (candidates === null) {
    await load(null);
    pending = [...states.entries()].filter(([, s]) => s.includes(TaskState.NONE)).map(([id]) => id);
  } else {
    pending = [...new Set(candidates)].filter((id) => dag.tasks.has(id));
    const need = new Set(pending);
    for (const id of pending) for (const up of dag.tasks.get(id)!.upstreamIds) need.add(up);
    await load([...need]);
  }

  const verdicts = { scheduled: [] as string[], skipped: [] as string[], upstream_failed: [] as string[] };
  while (pending.length) {
    const next: string[] = [];
    const missing = new Set<string>();
    for (const id of pending) {
      if (!states.get(id)?.includes(TaskState.NONE)) continue;
      for (const up of dag.tasks.get(id)!.upstreamIds) if (!states.has(up)) missing.add(up);
    }
    if (missing.size) await load([...missing]);
    for (const id of pending) {
      const own = states.get(id);
      if (!own?.includes(TaskState.NONE)) continue;
      const op = dag.tasks.get(id)!;
      const verdict = evaluateTriggerRule(op.options.triggerRule, countUpstream(op.upstreamIds, states));
      if (verdict === 'wait') continue;
      const newState = verdict === 'run' ? TaskState.SCHEDULED : verdict === 'skip' ? TaskState.SKIPPED : TaskState.UPSTREAM_FAILED;
      states.set(id, own.map((s) => (s === TaskState.NONE ? newState : s)));
      (verdicts[newState as keyof typeof verdicts]).push(id);
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
  for (const [state, ids] of Object.entries(verdicts)) {
    if (!ids.length) continue;
    const finished = state !== TaskState.SCHEDULED;
    await ex.update(taskInstances)
      .set(finished ? { state, endDate: sql`now()`, duration: 0 } : { state, scheduledAt: sql`now()` })
      .where(and(eq(taskInstances.runPk, runPk), inArray(taskInstances.taskId, ids), eq(taskInstances.state, TaskState.NONE)));
  }
  return { scheduled: verdicts.scheduled.length, skipped: verdicts.skipped.length, upstreamFailed: verdicts.upstream_failed.length };
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
      state: TaskState.DEFERRED, tryNumber: 1, startDate: sql`now()`, triggerId, triggerTimeout,
      nextMethod: start.method ?? 'executeComplete', nextKwargs: { kwargs: start.kwargs ?? {} },
    }).where(and(eq(taskInstances.runPk, runPk), eq(taskInstances.taskId, id), eq(taskInstances.state, TaskState.NONE)));
  }
  await notify(ex, Channel.TRIGGERER, triggerIds.join(','));
}

function countUpstream(upstream: Set<string>, states: Map<string, string[]>): UpstreamCounts {
  const c: UpstreamCounts = { total: 0, success: 0, failed: 0, upstreamFailed: 0, skipped: 0 };
  for (const up of upstream) {
    for (const s of states.get(up) ?? []) {
      c.total++;
      if (s === TaskState.SUCCESS) c.success++;
      else if (s === TaskState.FAILED) c.failed++;
      else if (s === TaskState.UPSTREAM_FAILED) c.upstreamFailed++;
      else if (s === TaskState.SKIPPED) c.skipped++;
    }
  }
  return c;
}
