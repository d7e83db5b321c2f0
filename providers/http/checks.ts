/**
 * Declarative response checks: plain data, so they can travel inside a trigger's kwargs and be
 * evaluated in the triggerer, where a function cannot go. A check holds when every part given
 * holds: the status is one of `status`, the value at `jsonPath` equals `equals` (or exists, when
 * `equals` is absent), the body contains `contains`.
 */
import { z } from 'zod';
import { isDeepStrictEqual } from 'node:util';

export const responseCheckSchema = z.object({
  status: z.array(z.number().int().min(100).max(599)).min(1).optional(),
  /** A dotted path into the JSON body: `data.items[0].state` (a leading `$.` is allowed). */
  jsonPath: z.string().min(1).optional(),
  equals: z.unknown().optional(),
  contains: z.string().min(1).optional(),
}).strict().refine((c) => c.status || c.jsonPath || c.contains, { message: 'a check needs at least one of status, jsonPath or contains' });

export type ResponseCheck = z.output<typeof responseCheckSchema>;

/** The value at a dotted path (`a.b[2].c`), or undefined when any step is missing. */
export function valueAt(value: unknown, path: string): unknown {
  const steps = path.replace(/^\$\.?/, '').match(/[^.[\]]+|\[\d+\]/g) ?? [];
  let cur: unknown = value;
  for (const step of steps) {
    if (cur === null || typeof cur !== 'object') return undefined;
    const key = step.startsWith('[') ? Number(step.slice(1, -1)) : step;
    cur = (cur as Record<string | number, unknown>)[key];
  }
  return cur;
}

export function checkResponse(check: ResponseCheck, response: { status: number; body: unknown }): boolean {
  if (check.status && !check.status.includes(response.status)) return false;
  if (check.jsonPath !== undefined) {
    const v = valueAt(response.body, check.jsonPath);
    if ('equals' in check && check.equals !== undefined ? !isDeepStrictEqual(v, check.equals) : v === undefined) return false;
  }
  if (check.contains !== undefined) {
    const text = typeof response.body === 'string' ? response.body : JSON.stringify(response.body ?? '');
    if (!text.includes(check.contains)) return false;
  }
  return true;
}
