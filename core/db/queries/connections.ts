/** Connection and variable rows. Secret columns arrive sealed and leave sealed: sealing is the caller's. */
import { asc, eq, inArray } from 'drizzle-orm';
import { connections, variables } from '../schema.ts';
import type { Executor } from '../client.ts';

export type DbConnection = typeof connections.$inferSelect;
export type DbVariable = typeof variables.$inferSelect;

export async function getConnectionRow(ex: Executor, connId: string): Promise<DbConnection | null> {
  const [row] = await ex.select().from(connections).where(eq(connections.connId, connId));
  return row ?? null;
}

export async function listConnectionRows(ex: Executor): Promise<DbConnection[]> {
  return ex.select().from(connections).orderBy(asc(connections.connId));
}

/** Insert, or replace when `replace` (else a duplicate id throws the database's unique error). */
export async function putConnectionRow(ex: Executor, row: Omit<DbConnection, 'updatedAt'>, replace: boolean): Promise<boolean> {
  const values = { ...row, updatedAt: new Date() };
  const q = ex.insert(connections).values(values);
  const rows = replace
    ? await q.onConflictDoUpdate({ target: connections.connId, set: values }).returning({ id: connections.connId })
    : await q.onConflictDoNothing().returning({ id: connections.connId });
  return rows.length > 0;
}

export async function deleteConnectionRows(ex: Executor, connIds: string[]): Promise<number> {
  if (!connIds.length) return 0;
  return (await ex.delete(connections).where(inArray(connections.connId, connIds)).returning({ id: connections.connId })).length;
}

export async function getVariableRow(ex: Executor, key: string): Promise<DbVariable | null> {
  const [row] = await ex.select().from(variables).where(eq(variables.key, key));
  return row ?? null;
}

export async function listVariableRows(ex: Executor): Promise<DbVariable[]> {
  return ex.select().from(variables).orderBy(asc(variables.key));
}

export async function putVariableRow(ex: Executor, key: string, val: string, description: string | null): Promise<void> {
  const values = { key, val, description, updatedAt: new Date() };
  await ex.insert(variables).values(values).onConflictDoUpdate({ target: variables.key, set: values });
}

export async function deleteVariableRows(ex: Executor, keys: string[]): Promise<number> {
  if (!keys.length) return 0;
  return (await ex.delete(variables).where(inArray(variables.key, keys)).returning({ key: variables.key })).length;
}
