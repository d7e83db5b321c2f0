/**
 * The callback queue: callbacks the scheduler decides (a zombie failed or retried) and a run's
 * callbacks when it closes, queued in the same transaction, run by whichever worker claims
 * them. A claim is a lease: a row claimed by a worker that died is claimed again after
 * CLAIM_LEASE, so a callback runs at least once.
 */
import { eq, sql } from 'drizzle-orm';
import { callbackRequests } from '../schema.ts';
import { resultRows, type Executor } from '../client.ts';
import { storableText } from '../../model/json-value.ts';

/** The NOTIFY payload on the worker channel that announces queued callbacks. */
export const CALLBACKS_PAYLOAD = 'callbacks';
const CLAIM_LEASE = '5 minutes';

export interface NewCallbackRequest {
  scope: 'task' | 'dag';
  kind: string;
  dagId: string;
  runPk: number;
  tiId?: number | null;
  tryNumber?: number | null;
  error?: string | null;
}

export type CallbackRequest = typeof callbackRequests.$inferSelect;

export async function enqueueCallbacks(ex: Executor, rows: NewCallbackRequest[]): Promise<void> {
  if (!rows.length) return;
  await ex.insert(callbackRequests).values(rows.map((r) => ({ ...r, error: r.error == null ? null : storableText(r.error) })));
}

/** Claim up to `limit` requests, oldest first, skipping rows another worker holds. */
export async function claimCallbacks(ex: Executor, workerId: string, limit: number): Promise<CallbackRequest[]> {
  const rows = resultRows<Record<string, unknown>>(await ex.execute(sql`
    update callback_requests c set worker_id = ${workerId}, claimed_at = now()
    where c.id in (
      select id from callback_requests where claimed_at is null or claimed_at < now() - ${CLAIM_LEASE}::interval
      order by id limit ${limit} for update skip locked)
    returning c.id, c.scope, c.kind, c.dag_id, c.run_pk, c.ti_id, c.try_number, c.error`));
  return rows.map((r) => ({
    id: Number(r.id), scope: String(r.scope), kind: String(r.kind), dagId: String(r.dag_id), runPk: Number(r.run_pk),
    tiId: r.ti_id === null ? null : Number(r.ti_id), tryNumber: r.try_number === null ? null : Number(r.try_number),
    error: (r.error as string | null) ?? null, createdAt: new Date(), workerId, claimedAt: new Date(),
  }));
}

export async function deleteCallback(ex: Executor, id: number): Promise<void> {
  await ex.delete(callbackRequests).where(eq(callbackRequests.id, id));
}

/** Wait (polling) until no callback is queued or claimed, for at most `timeoutMs`; true if the queue drained. */
export async function waitForQueue(ex: Executor, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await ex.select({ id: callbackRequests.id }).from(callbackRequests).limit(1);
    if (!row) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}
