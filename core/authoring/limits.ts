/**
 * Concurrency limits beyond pools, expressed as keys. Each TI gets one key per limit it is
 * subject to (with that limit's size); the claim counts running TIs per key. Forms follow
 * Dagster's tag concurrency limits: `{ key, value, limit }` limits that key/value pair,
 * `{ key, limit }` limits every value of the key together, and
 * `{ key, value: { applyLimitPerUniqueValue: true }, limit }` gives each value its own limit.
 */
import { z } from 'zod';

export const tagLimitSchema = z.object({
  key: z.string().min(1),
  value: z.union([z.string(), z.object({ applyLimitPerUniqueValue: z.literal(true) })]).optional(),
  limit: z.number().int().nonnegative(),
}).strict();

export type TagLimit = z.infer<typeof tagLimitSchema>;

/** Keys (scoped by `scope`, e.g. a run) that `tags` fall under, with their limits. */
export function tagLimitKeys(scope: string, tags: Record<string, string>, limits: readonly TagLimit[]): { key: string; limit: number }[] {
  const out: { key: string; limit: number }[] = [];
  limits.forEach((l, i) => {
    if (!(l.key in tags)) return;
    const value = tags[l.key];
    if (typeof l.value === 'string') {
      if (value === l.value) out.push({ key: `${scope}:tag${i}:${l.key}=${value}`, limit: l.limit });
    } else if (l.value?.applyLimitPerUniqueValue) {
      out.push({ key: `${scope}:tag${i}:${l.key}=${value}`, limit: l.limit });
    } else {
      out.push({ key: `${scope}:tag${i}:${l.key}`, limit: l.limit });
    }
  });
  return out;
}

/** Whether `tags` may start, given tags of what is running and the limits (run-queue use). */
export function withinTagLimits(tags: Record<string, string>, running: Record<string, string>[], limits: readonly TagLimit[]): boolean {
  const counts = new Map<string, number>();
  for (const r of running) for (const k of tagLimitKeys('q', r, limits)) counts.set(k.key, (counts.get(k.key) ?? 0) + 1);
  return tagLimitKeys('q', tags, limits).every((k) => (counts.get(k.key) ?? 0) < k.limit);
}
