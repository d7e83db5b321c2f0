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
 * is never overwritten by a failure (a late write from a superseded try cannot undo one).
 */
export async function writeCheckpoints(database: Database, tiId: number, tryNumber: number, rows: CheckpointRow[], progress: IterateProgress): Promise<void> {
  // Built as one string: no second array of row objects for a batch of thousands.
  let payload = '[';
  for (let k = 0; k < rows.length; k++) {
    const r = rows[k];
    payload += `${k ? ',' : ''}{"i":${r.index},"s":"${r.state}","r":${r.result === undefined ? 'null' : JSON.stringify(r.result)},"e":${JSON.stringify(r.error)},"a":${r.attempts},"f":${r.finishedAt}}`;
  }
  payload += ']';
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

/**
 * Set an iterate TI's progress while `tryNumber` is its current try. Within a try progress only
 * moves forward (done + failed never shrinks), so writes finishing out of order cannot show an
 * older count; `reset` (a try's start) overrides whatever an earlier try left.
 */
export async function setProgress(ex: Executor, tiId: number, tryNumber: number, progress: IterateProgress, reset = false): Promise<void> {
  const finished = progress.done + progress.failed;
  await ex.execute(sql`update task_instances set progress = ${JSON.stringify(progress)}::jsonb
    where id = ${tiId} and try_number = ${tryNumber}
      and (${reset}::boolean or progress is null
        or coalesce((progress->>'done')::int, 0) + coalesce((progress->>'failed')::int, 0) <= ${finished}::int)`);
}
