/**
 * Durations in task and DAG options: milliseconds as a number, or a short string such as
 * "500ms", "30s", "5m", "2h", "1d" (parts may be combined: "1h30m").
 */
import { z } from 'zod';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

export function parseDuration(input: string): number | null {
  const trimmed = input.trim();
  if (!trimmed) return null;
  let total = 0;
  let consumed = 0;
  for (const m of trimmed.matchAll(PART)) {
    total += Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
    consumed += m[0].length;
  }
  return consumed === trimmed.length ? total : null;
}

export const durationSchema = z.union([z.number().nonnegative(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const ms = parseDuration(v);
  if (ms === null) {
    ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration; use milliseconds or a string like "30s", "5m", "1h30m"` });
    return z.NEVER;
  }
  return ms;
});

export type Duration = number | string;
