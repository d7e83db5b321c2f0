/**
 * Applying what triggers produce to the TIs waiting on them, in batches. Every update is
 * conditional on `state = 'deferred' and trigger_id = <that trigger>`, so a duplicate event
 * (two triggerers briefly running one trigger) changes nothing the second time.
 */
import { sql } from 'drizzle-orm';
import { Channel, notify, resultRows, type Database, type Executor } from '../client.ts';
import { CALLBACKS_PAYLOAD } from './callbacks.ts';
import { TaskState } from '../../model/states.ts';
import { writeXComs, type XComWrite } from './xcom.ts';
import { recordHistory } from './task-instances.ts';
import { FAIL_METHOD } from '../../authoring/deferral.ts';
import { storableText } from '../../model/json-value.ts';
import { recordEndedTiEvents } from './datasets.ts';

export const EVENT_XCOM_KEY = '__trigger_event__';

export type TriggerOutcome =
  | { triggerId: number; kind: 'event'; payload: unknown }
  | { triggerId: number; kind: 'success' | 'failed'; xcoms: Record<string, unknown>; error: string | null }
  | { triggerId: number; kind: 'failure'; failure: { kind: 'timeout' | 'error'; message: string; retryable: boolean } };

export interface AppliedTi {
  id: number;
  runPk: number;
  taskId: string;
  mapIndex: number;
  triggerId: number;
  state: string;
}

const mapRows = (rows: Record<string, unknown>[]): AppliedTi[] => rows.map((r) => ({
  id: Number(r.id), runPk: Number(r.run_pk), taskId: String(r.task_id), mapIndex: Number(r.map_index),
  triggerId: Number(r.trigger_id), state: String(r.state),
}));

/**
 * Resume (or finish) the TIs waiting on each trigger. Payloads over `inlineLimit` bytes go to
 * XCom and `next_kwargs.event` holds a reference. Returns the TIs that changed.
 */
export async function applyTriggerOutcomes(ex: Executor, database: Database, outcomes: TriggerOutcome[], inlineLimit: number,
  encode: (w: XComWrite) => Promise<XComWrite> = async (w) => w): Promise<AppliedTi[]> {
  const applied: AppliedTi[] = [];
  const resumes = outcomes.filter((o) => o.kind === 'event' || o.kind === 'failure');
  if (resumes.length) {
    const large = new Map<number, unknown>();
    const values = sql.join(resumes.map((o) => {
      let patch: unknown;
      if (o.kind === 'event') {
        const text = JSON.stringify(o.payload ?? null);
        if (Buffer.byteLength(text) > inlineLimit) {
          large.set(o.triggerId, o.payload);
          patch = { event: { __xcom_ref__: EVENT_XCOM_KEY } };
        } else patch = { event: o.payload ?? null };
      } else patch = { failure: { ...o.failure, message: storableText(o.failure.message) } };
      return sql`(${o.triggerId}::bigint, ${o.kind === 'failure' ? FAIL_METHOD : null}::text, ${JSON.stringify(patch)}::jsonb)`;
    }), sql`, `);
    const rows = await database.rows<Record<string, unknown>>(sql`
      update task_instances t
      set state = ${TaskState.SCHEDULED}, scheduled_at = now(), trigger_id = null, trigger_timeout = null,
          next_method = coalesce(v.fail_method, t.next_method),
          next_kwargs = coalesce(t.next_kwargs, '{}'::jsonb) || v.patch
      from (values ${values}) as v(trigger_id, fail_method, patch)
      where t.trigger_id = v.trigger_id and t.state = ${TaskState.DEFERRED}
      returning t.id, t.run_pk, t.task_id, t.map_index, v.trigger_id, t.state`, ex);
    const tis = mapRows(rows);
    applied.push(...tis);
    const xcoms: XComWrite[] = await Promise.all(tis.filter((t) => large.has(t.triggerId))
      .map((t) => encode({ runPk: t.runPk, taskId: t.taskId, mapIndex: t.mapIndex, key: EVENT_XCOM_KEY, value: large.get(t.triggerId) })));
    await writeXComs(ex, xcoms);
  }
  const ends = outcomes.filter((o): o is Extract<TriggerOutcome, { kind: 'success' | 'failed' }> => o.kind === 'success' || o.kind === 'failed');
  if (ends.length) {
    const values = sql.join(ends.map((o) => sql`(${o.triggerId}::bigint, ${o.kind === 'success' ? TaskState.SUCCESS : TaskState.FAILED}::text, ${o.error === null ? null : storableText(o.error)}::text)`), sql`, `);
    const rows = await database.rows<Record<string, unknown>>(sql`
      update task_instances t
      set state = v.state, end_date = now(), duration = extract(epoch from now() - t.start_date), error = v.error,
          trigger_id = null, trigger_timeout = null, next_method = null, next_kwargs = null
      from (values ${values}) as v(trigger_id, state, error), task_instances before
      where t.trigger_id = v.trigger_id and t.state = ${TaskState.DEFERRED} and before.id = t.id
      returning t.id, t.run_pk, t.task_id, t.map_index, v.trigger_id, t.state, t.dag_id, t.run_id,
        before.next_kwargs -> 'outletEvents' as outlet_events`, ex);
    const tis = mapRows(rows);
    // A task ended here by its trigger records its dataset events in this transaction too.
    await recordEndedTiEvents(ex, rows.filter((r) => r.state === TaskState.SUCCESS).map((r) => ({
      dagId: String(r.dag_id), runId: String(r.run_id), taskId: String(r.task_id), mapIndex: Number(r.map_index), carried: r.outlet_events,
    })));
    applied.push(...tis);
    await queueEndedTiCallbacks(ex, tis.map((t) => t.id));
    const byTrigger = new Map(ends.map((o) => [o.triggerId, o]));
    const xcoms: XComWrite[] = [];
    for (const t of tis) {
      for (const [key, value] of Object.entries(byTrigger.get(t.triggerId)!.xcoms)) xcoms.push({ runPk: t.runPk, taskId: t.taskId, mapIndex: t.mapIndex, key, value });
    }
    await writeXComs(ex, await Promise.all(xcoms.map(encode)));
    await recordHistory(ex, tis.map((t) => t.id));
  }
  return applied;
}

/**
 * A TI its trigger ended (success or failed) gets its callback on a worker: queued here, in
 * the transaction that ended it, when the DAG's serialized task lists that kind.
 */
async function queueEndedTiCallbacks(ex: Executor, tiIds: number[]): Promise<void> {
  if (!tiIds.length) return;
  // Each DAG's serialized tasks are read once per batch, not once per TI (a DAG may be large).
  const queued = resultRows(await ex.execute(sql`
    with ended as (
      select id, dag_id, run_pk, task_id, try_number, error,
        case when state = ${TaskState.SUCCESS} then 'success' else 'failure' end as kind
      from task_instances where id in ${tiIds}
    ), with_callbacks as (
      select d.dag_id, x ->> 'taskId' as task_id, x -> 'callbacks' as kinds
      from dags d cross join lateral jsonb_array_elements(d.serialized -> 'tasks') x
      where d.dag_id in (select dag_id from ended) and jsonb_array_length(coalesce(x -> 'callbacks', '[]'::jsonb)) > 0
    )
    insert into callback_requests (scope, kind, dag_id, run_pk, ti_id, try_number, error)
    select 'task', e.kind, e.dag_id, e.run_pk, e.id, e.try_number, e.error
    from ended e join with_callbacks w on w.dag_id = e.dag_id and w.task_id = e.task_id
    where w.kinds @> jsonb_build_array(e.kind)
    returning id`));
  if (queued.length) await notify(ex, Channel.WORKER, CALLBACKS_PAYLOAD);
}

/** Fail one TI's wait on its trigger (its own trigger_timeout passed). */
export async function timeoutWaitingTi(ex: Executor, database: Database, tiId: number, triggerId: number, message: string): Promise<boolean> {
  const patch = JSON.stringify({ failure: { kind: 'timeout', message, retryable: true } });
  const rows = await database.rows<{ id: number }>(sql`
    update task_instances set state = ${TaskState.SCHEDULED}, scheduled_at = now(), trigger_id = null, trigger_timeout = null,
      next_method = ${FAIL_METHOD}, next_kwargs = coalesce(next_kwargs, '{}'::jsonb) || ${patch}::jsonb
    where id = ${tiId} and trigger_id = ${triggerId} and state = ${TaskState.DEFERRED}
    returning id`, ex);
  return rows.length > 0;
}
