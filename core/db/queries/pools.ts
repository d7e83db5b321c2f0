/** Pools: named slot limits shared by every run and every worker. */
import { asc, eq, sql } from 'drizzle-orm';
import { pools } from '../schema.ts';
import type { Executor } from '../client.ts';
import { TaskState } from '../../model/states.ts';

export async function setPool(ex: Executor, name: string, slots: number, includeDeferred: boolean, description: string | null): Promise<void> {
  await ex.insert(pools).values({ name, slots, includeDeferred, description })
    .onConflictDoUpdate({ target: pools.name, set: { slots, includeDeferred, description: sql`coalesce(${description}, ${pools.description})` } });
}

export async function deletePool(ex: Executor, name: string): Promise<boolean> {
  const rows = await ex.delete(pools).where(eq(pools.name, name)).returning({ name: pools.name });
  return rows.length > 0;
}

/** Pools with the slots in use now (running TIs, plus deferred ones where they count). */
export async function listPools(ex: Executor) {
  return ex.select({
    name: pools.name, slots: pools.slots, includeDeferred: pools.includeDeferred, description: pools.description,
    used: sql<number>`coalesce((select sum(ti.pool_slots) from task_instances ti where ti.pool = ${pools.name}
      and (ti.state = ${TaskState.RUNNING} or (${pools.includeDeferred} and ti.state = ${TaskState.DEFERRED}))), 0)::int`,
  }).from(pools).orderBy(asc(pools.name));
}
