/** XCom rows: task return values and explicit pushes, keyed by run, task, map index and key. */
import { and, eq, inArray, sql, type SQL } from 'drizzle-orm';
import { xcom } from '../schema.ts';
import type { Executor } from '../client.ts';
import { xcomStorage } from '../../xcom/storage.ts';

export interface XComWrite {
  runPk: number;
  taskId: string;
  mapIndex: number;
  key: string;
  value: unknown;
  /** How a large value is kept (see xcom/storage.ts); absent for a value stored inline. */
  codec?: string | null;
  data?: Buffer | null;
  size?: number | null;
}

/** A row's stored form, for the decoder of a value that isn't inline. */
export interface XComRow {
  value: unknown;
  codec: string | null;
  data: Buffer | null;
}

export type XComDecoder = (row: XComRow) => Promise<unknown>;

/** By default a stored value is read through the process's XCom storage (set from the config). */
const processStorage: XComDecoder = (row) => xcomStorage().decode(row);

export async function writeXComs(ex: Executor, items: XComWrite[]): Promise<void> {
  const statement = writeXComsStatement(items);
  if (statement) await ex.execute(statement);
}

/**
 * writeXComs as one statement (an upsert), or null when there is nothing to write. The rows go
 * as one JSON parameter: one statement text whatever the batch size, and no per-value SQL to
 * build (a worker writes a batch of results many times a second).
 */
export function writeXComsStatement(items: XComWrite[]): SQL | null {
  if (!items.length) return null;
  const rows = JSON.stringify(items.map((i) => ({
    run_pk: i.runPk, task_id: i.taskId, map_index: i.mapIndex, key: i.key, value: i.value === undefined ? null : i.value,
    codec: i.codec ?? null, data: i.data ? i.data.toString('base64') : null, size: i.size ?? null,
  })));
  return sql`
    insert into ${xcom} (run_pk, task_id, map_index, key, value, codec, data, size, created_at)
    select v.run_pk, v.task_id, v.map_index, v.key, v.value, v.codec, decode(v.data, 'base64'), v.size, now()
    from jsonb_to_recordset(${rows}::jsonb) as v(run_pk int, task_id text, map_index int, key text, value jsonb, codec text, data text, size int)
    on conflict (run_pk, task_id, map_index, key) do update
    set value = excluded.value, codec = excluded.codec, data = excluded.data, size = excluded.size, created_at = excluded.created_at`;
}

/** Clear a TI's XComs before a new try writes its own; returns what was kept outside the row. */
export async function clearXComs(ex: Executor, runPk: number, taskId: string, mapIndex: number): Promise<XComRow[]> {
  return ex.delete(xcom).where(and(eq(xcom.runPk, runPk), eq(xcom.taskId, taskId), eq(xcom.mapIndex, mapIndex)))
    .returning({ value: xcom.value, codec: xcom.codec, data: xcom.data });
}

/**
 * Values for (task, key) refs of one run. A ref to a mapped task yields the list of its map
 * indexes' values in index order (null where an index stored nothing): that is fan-in.
 */
export async function readXComs(ex: Executor, runPk: number, refs: { taskId: string; key: string; mapped?: boolean }[], decode: XComDecoder = processStorage): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  if (!refs.length) return out;
  const rows = await ex.select({ taskId: xcom.taskId, key: xcom.key, mapIndex: xcom.mapIndex, value: xcom.value, codec: xcom.codec, data: xcom.data }).from(xcom)
    .where(and(eq(xcom.runPk, runPk), inArray(xcom.taskId, [...new Set(refs.map((r) => r.taskId))]), inArray(xcom.key, [...new Set(refs.map((r) => r.key))])));
  const mapped = new Set(refs.filter((r) => r.mapped).map((r) => xcomKey(r.taskId, r.key)));
  const lists = new Map<string, unknown[]>();
  for (const r of rows) {
    if (r.codec !== null) r.value = await decode(r);
    const k = xcomKey(r.taskId, r.key);
    if (!mapped.has(k)) {
      if (r.mapIndex === -1) out.set(k, r.value);
      continue;
    }
    if (r.mapIndex < 0) continue;
    const list = lists.get(k) ?? [];
    list[r.mapIndex] = r.value;
    lists.set(k, list);
  }
  for (const k of mapped) out.set(k, Array.from(lists.get(k) ?? [], (v) => v ?? null));
  return out;
}

export async function readXCom(ex: Executor, runPk: number, taskId: string, key: string, mapIndex: number, decode: XComDecoder = processStorage): Promise<unknown> {
  const [row] = await ex.select({ value: xcom.value, codec: xcom.codec, data: xcom.data }).from(xcom)
    .where(and(eq(xcom.runPk, runPk), eq(xcom.taskId, taskId), eq(xcom.key, key), eq(xcom.mapIndex, mapIndex)));
  if (!row) return undefined;
  return row.codec === null ? row.value ?? undefined : decode(row);
}

export const xcomKey = (taskId: string, key: string) => `${taskId}\u0000${key}`;

/** A run's XComs (one task's, when given), decoded, by task, map index and key. */
export async function listXComs(ex: Executor, runPk: number, taskId?: string, decode: XComDecoder = processStorage) {
  const rows = await ex.select({ taskId: xcom.taskId, mapIndex: xcom.mapIndex, key: xcom.key, value: xcom.value, codec: xcom.codec, data: xcom.data, createdAt: xcom.createdAt })
    .from(xcom).where(taskId === undefined ? eq(xcom.runPk, runPk) : and(eq(xcom.runPk, runPk), eq(xcom.taskId, taskId)))
    .orderBy(xcom.taskId, xcom.mapIndex, xcom.key);
  const out = [];
  for (const { codec, data, ...r } of rows) out.push({ ...r, value: codec === null ? r.value : await decode({ value: r.value, codec, data }) });
  return out;
}
