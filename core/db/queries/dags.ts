/** DAG rows (the serialized structure other hosts read) and per-file import errors. */
import { createHash } from 'node:crypto';
import { eq, inArray, notInArray, asc } from 'drizzle-orm';
import { dags, importErrors } from '../schema.ts';
import type { Executor } from '../client.ts';
import type { Dag } from '../../authoring/dag.ts';
import { syncDatasetReferences } from './datasets.ts';

/** Upsert every parsed DAG and its dataset references, deactivate DAGs that vanished, and replace import errors. */
export async function syncDagBag(ex: Executor, parsed: Iterable<Dag>, errors: Map<string, string>): Promise<void> {
  const now = new Date();
  const ids: string[] = [];
  const all = [...parsed];
  for (const d of all) {
    ids.push(d.dagId);
    const serialized = d.serialize();
    const fingerprint = createHash('sha256').update(JSON.stringify(serialized)).digest('hex');
    await ex.insert(dags).values({
      dagId: d.dagId, fileloc: d.fileloc, serialized, schedule: d.schedule, timezone: d.timezone,
      description: d.description, tags: d.tags, fingerprint, lastParsedAt: now, isActive: true, maxActiveTasks: d.maxActiveTasks,
      isPaused: d.isPausedUponCreation,
    }).onConflictDoUpdate({
      target: dags.dagId,
      set: {
        fileloc: d.fileloc, serialized, schedule: d.schedule, timezone: d.timezone, description: d.description,
        tags: d.tags, fingerprint, lastParsedAt: now, isActive: true, maxActiveTasks: d.maxActiveTasks,
      },
    });
  }
  await syncDatasetReferences(ex, all);
  await ex.update(dags).set({ isActive: false }).where(ids.length ? notInArray(dags.dagId, ids) : undefined);
  await ex.delete(importErrors);
  if (errors.size) {
    await ex.insert(importErrors).values([...errors].map(([fileloc, error]) => ({ fileloc, error, timestamp: now })));
  }
}

export async function listDagRows(ex: Executor) {
  return ex.select().from(dags).orderBy(asc(dags.dagId));
}

export async function listImportErrors(ex: Executor) {
  return ex.select().from(importErrors).orderBy(asc(importErrors.fileloc));
}

/** Lock the DAG rows this scheduler may create runs for now (skipping those another holds). */
export async function lockDagsForRunCreation(ex: Executor, dagIds: string[]) {
  if (!dagIds.length) return [];
  return ex.select({ dagId: dags.dagId, lastIntervalEnd: dags.lastIntervalEnd, isPaused: dags.isPaused })
    .from(dags).where(inArray(dags.dagId, dagIds)).for('update', { skipLocked: true });
}

export async function setLastIntervalEnd(ex: Executor, dagId: string, end: Date): Promise<void> {
  await ex.update(dags).set({ lastIntervalEnd: end }).where(eq(dags.dagId, dagId));
}

export async function setPaused(ex: Executor, dagId: string, paused: boolean): Promise<boolean> {
  const rows = await ex.update(dags).set({ isPaused: paused }).where(eq(dags.dagId, dagId)).returning({ id: dags.dagId });
  return rows.length > 0;
}

