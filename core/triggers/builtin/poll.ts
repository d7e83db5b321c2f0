/**
 * The polling loop of triggers that watch Updraft's own database: observe, decide, sleep, until
 * a decision or cancellation. A few consecutive failed reads (a database blip) are tolerated
 * before the trigger itself fails.
 */
import type { z } from 'zod';
import { sleep } from './date-time.ts';

/** Consecutive failed polls tolerated before the error ends the trigger. */
export const MAX_POLL_ERRORS = 3;

export async function pollUntilDecided<S, E>(signal: AbortSignal, intervalMs: number, observe: () => Promise<S[]>, decide: (states: S[]) => E | null): Promise<E | null> {
  let errors = 0;
  while (!signal.aborted) {
    let states: S[];
    try {
      states = await observe();
      errors = 0;
    } catch (err) {
      if (signal.aborted) return null;
      if (++errors >= MAX_POLL_ERRORS) throw err;
      states = [];
    }
    if (signal.aborted) return null;
    const event = decide(states);
    if (event) return event;
    if (!(await sleep(intervalMs, signal))) return null;
  }
  return null;
}

/** A state in both lists would make the outcome depend on which list is checked first. */
export function disjointStates(k: { allowedStates: readonly string[]; failedStates: readonly string[] }, ctx: z.RefinementCtx): void {
  const both = k.allowedStates.filter((s) => k.failedStates.includes(s));
  if (both.length) ctx.addIssue({ code: 'custom', path: ['failedStates'], message: `states ${both.join(', ')} are both allowed and failed` });
}
