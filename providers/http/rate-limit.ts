/**
 * A token bucket per connection and process: `rate` requests per second with a `burst`. Every
 * task on a worker and every trigger in the triggerer that uses the connection draws from the
 * same bucket. The server can also close it for a while: a 429's Retry-After, or rate-limit
 * headers saying the budget is spent (`x-ratelimit-remaining: 0` with a reset), hold every
 * caller until then.
 */
import { z } from 'zod';

export const rateLimitSchema = z.union([
  z.coerce.number().positive().transform((rate) => ({ rate, burst: 1 })),
  z.object({ rate: z.coerce.number().positive(), burst: z.coerce.number().int().min(1).default(1) }).strict(),
]);

export type RateLimit = z.output<typeof rateLimitSchema>;

const abortable = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve, reject) => {
  if (signal?.aborted) return reject(signal.reason);
  const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
  const onAbort = () => { clearTimeout(timer); reject(signal!.reason); };
  signal?.addEventListener('abort', onAbort, { once: true });
});

export { abortable as sleep };

export class TokenBucket {
  /** The theoretical arrival time of the next request (GCRA), advanced when a request actually goes. */
  private tat = 0;
  private closedUntil = 0;
  /** Callers take turns: each waits for its slot after the previous one went. */
  private turn: Promise<void> = Promise.resolve();

  constructor(readonly limit: RateLimit | null) {}

  /**
   * Wait for a token, in call order. Slots are counted from when requests actually go, not when
   * they were promised: a process that stalls (a busy event loop) then sends its overdue
   * requests spaced out, not in one burst the server would count against the budget.
   */
  take(signal?: AbortSignal): Promise<void> {
    const mine = this.turn.then(() => this.waitForSlot(signal));
    this.turn = mine.catch(() => {});
    return mine;
  }

  private async waitForSlot(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const now = Date.now();
      let start = Math.max(now, this.closedUntil);
      if (this.limit) start = Math.max(start, Math.max(this.tat, now) - (this.limit.burst - 1) * (1000 / this.limit.rate));
      if (start <= now) break;
      await abortable(start - now, signal);
    }
    if (this.limit) this.tat = Math.max(this.tat, Date.now()) + 1000 / this.limit.rate;
  }

  /** Hold every caller until `until` (epoch ms). */
  closeUntil(until: number): void {
    if (until > this.closedUntil) this.closedUntil = until;
  }

  /** Learn from a response's rate-limit headers: a spent budget closes the bucket until its reset. */
  observe(headers: Record<string, string | string[] | undefined>, now = Date.now()): void {
    const first = (name: string) => { const v = headers[name]; return Array.isArray(v) ? v[0] : v; };
    const remaining = first('x-ratelimit-remaining') ?? first('ratelimit-remaining');
    if (remaining === undefined || Number(remaining) > 0) return;
    const reset = Number(first('x-ratelimit-reset') ?? first('ratelimit-reset'));
    if (!Number.isFinite(reset) || reset <= 0) return;
    // GitHub-style headers give an epoch second; the IETF draft gives seconds from now.
    this.closeUntil(reset > 1e9 ? reset * 1000 : now + reset * 1000);
  }
}
