/** XCom rows: task return values and explicit pushes, keyed by run, task, map index and key. */
import { and, eq, inArray, sql } from 'drizzle-orm';
import { xcom } from '../schema.ts';
import type { Executor } from '../client.ts';

export interface XComWrite {
  runPk: number;
  taskId: string;
  mapIndex: number;
  key: string;
  value: unknown;
}

export async function writeXComs(ex: Executor, items: XComWrite[]): Promise<void> {
  if (!items.length) return;
  await ex.insert(xcom)
    .values(items.map((i) => ({ ...i, value: i.value === undefined ? null : i.value, createdAt: new Date() })))
    .onConflictDoUpdate({
      target: [xcom.runPk, xcom.taskId, xcom.mapIndex, xcom.key],
      set: { value: sql`excluded.value`, createdAt: sql`excluded.created_at` },
    });
}

/** Clear a TI's XComs before a new try writes its own. */
export async function clearXComs(ex: Executor, runPk: number, taskId: string, mapIndex: number): Promise<void> {
  await ex.delete(xcom).where(and(eq(xcom.runPk, runPk), eq(xcom.taskId, taskId), eq(xcom.mapIndex, mapIndex)));
}

export async function readXComs(ex: Executor, runPk: number, refs: { taskId: string; key: string }[]): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  if (!refs.length) return out;
  const rows = await ex.select({ taskId: xcom.taskId, key: xcom.key, mapIndex: xcom.mapIndex, value: xcom.value }).from(xcom)
    .where(and(eq(xcom.runPk, runPk), inArray(xcom.taskId, [...new Set(refs.map((r) => r.taskId))]), inArray(xcom.key, [...new Set(refs.map((r) => r.key))])));
  for (const r of rows) if (r.mapIndex === -1) out.set(`${r.taskId}\u0000${r.key}`, r.value);
  return out;
}

export async function readXCom(ex: Executor, runPk: number, taskId: string, key: string, mapIndex: number): Promise<unknown> {
  const [row] = await ex.select({ value: xcom.value }).from(xcom)
    .where(and(eq(xcom.runPk, runPk), eq(xcom.taskId, taskId), eq(xcom.key, key), eq(xcom.mapIndex, mapIndex)));
  return row?.value ?? undefined;
}

export const xcomKey = (taskId: string, key: string) => `${taskId}\u0000${key}`;
