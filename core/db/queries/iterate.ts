/**
 * Checkpoints of iterate TIs: the `iterate_items` rows (one per finished item) and the TI's
 * live `progress`. Items are written in batches through one JSON parameter, so a batch of
 * any size is one statement and never hits PostgreSQL's bind-parameter limit.
 */
import { asc, eq, sql } from 'drizzle-orm';
import { iterateItems } from '../schema.ts';
import type { Database, Executor } from '../client.ts';

export type ItemState = 'success' | 'failed';

export interface CheckpointRow {
  index: number;
  state: ItemState;
  result: unknown;
  error: string | null;
  attempts: number;
  /** Epoch milliseconds. */
  finishedAt: number;
}

export interface IterateProgress {
  done: number;
  failed: number;
  total: number;
}

/** Every checkpoint row of a TI, by item index; failed rows carry their attempts so far. */
export async function loadCheckpoints(ex: Executor, tiId: number): Promise<{ index: number; state: string; result: unknown; attempts: number }[]> {
  return ex.select({ index: iterateItems.itemIndex, state: iterateItems.state, result: iterateItems.result, attempts: iterateItems.attempts })
    .from(iterateItems).where(eq(iterateItems.tiId, tiId)).orderBy(asc(iterateItems.itemIndex));
}

/**
 * Upsert a batch of finished items and set the TI's progress, in one transaction. A success
 * is never overwritten by a failure (a late write from a superseded try cannot undo one), and
 * progress is only set while `tryNumber` is still the TI's current try.
 */
export async function writeCheckpoints(database: Database, tiId: number, tryNumber: number, rows: CheckpointRow[], progress: IterateProgress): Promise<void> {
  const payload = JSON.stringify(rows.map((r) => ({
    i: r.index, s: r.state, r: r.result === undefined ? null : r.result, e: r.error, a: r.attempts, f: r.finishedAt,
  })));
  await database.db.transaction(async (tx) => {
    if (rows.length) {
      await tx.execute(sql`
        insert into iterate_items (ti_id, item_index, state, result, error, attempts, finished_at)
        select ${tiId}::bigint, x.i, x.s, x.r, x.e, x.a, to_timestamp(x.f / 1000.0)
        from jsonb_to_recordset(${payload}::jsonb) as x(i int, s text, r jsonb, e text, a int, f float8)
        on conflict (ti_id, item_index) do update
        set state = excluded.state, result = excluded.result, error = excluded.error, attempts = excluded.attempts, finished_at = excluded.finished_at
        where iterate_items.state <> 'success' or excluded.state = 'success'`);
    }
    await setProgress(tx, tiId, tryNumber, progress);
  });
}

export async function setProgress(ex: Executor, tiId: number, tryNumber: number, progress: IterateProgress): Promise<void> {
  await ex.execute(sql`update task_instances set progress = ${JSON.stringify(progress)}::jsonb
    where id = ${tiId} and try_number = ${tryNumber}`);
}

/** Forget a TI's checkpoints, so its next run starts from the first item. */
export async function clearCheckpoints(ex: Executor, tiId: number): Promise<void> {
  await ex.delete(iterateItems).where(eq(iterateItems.tiId, tiId));
}
