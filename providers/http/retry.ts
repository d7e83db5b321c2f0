/**
 * The HTTP retry policy. undici's own retry interceptor caps Retry-After at its maximum delay,
 * adds no jitter and never retries POST; Airflow's async hook retries only 5xx, with no delay.
 * Here: connection errors and 429/502/503/504 are retried; each delay is the larger of the
 * server's Retry-After (seconds or an HTTP date) and exponential backoff with full jitter; a
 * call never runs past its total deadline; non-idempotent methods retry only when asked.
 */
import { z } from 'zod';

export const retryPolicySchema = z.object({
  /** Attempts in all, the first included. */
  maxAttempts: z.coerce.number().int().min(1).max(100).default(5),
  statuses: z.array(z.coerce.number().int().min(100).max(599)).default([429, 502, 503, 504]),
  /** Retry connection errors (refused, reset, timeouts). */
  onConnectionError: z.boolean().default(true),
  /** The first backoff ceiling; it doubles per attempt, up to maxDelayMs. */
  baseDelayMs: z.coerce.number().int().nonnegative().default(500),
  maxDelayMs: z.coerce.number().int().nonnegative().default(30_000),
  /** No retry starts after this long since the call began (Retry-After included). */
  deadlineMs: z.coerce.number().int().positive().default(300_000),
  /** Retry POST and PATCH too: only for endpoints the caller knows are idempotent. */
  retryNonIdempotent: z.boolean().default(false),
}).strict();

export type RetryPolicy = z.output<typeof retryPolicySchema>;
export type RetryPolicyInput = z.input<typeof retryPolicySchema>;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export const isIdempotent = (method: string) => IDEMPOTENT.has(method.toUpperCase());

/** Error codes that mean "no answer came", from undici and the socket layer. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED',
]);

export function connectionErrorCode(err: unknown): string | null {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && CONNECTION_CODES.has(e.code)) return e.code;
    if (e instanceof AggregateError) {
      const inner = e.errors.map(connectionErrorCode).find(Boolean);
      if (inner) return inner;
    }
  }
  return null;
}

/** Retry-After as milliseconds from `now`: delta-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | null {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return null;
  if (/^\s*\d+(\.\d+)?\s*$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** Full-jitter backoff for retry number `retry` (1 for the first retry), at least `retryAfterMs`. */
export function retryDelayMs(policy: RetryPolicy, retry: number, retryAfterMs: number | null, random = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  const backoff = Math.floor(random() * ceiling);
  return Math.max(backoff, retryAfterMs ?? 0);
}

export function resolveRetryPolicy(...layers: (RetryPolicyInput | undefined)[]): RetryPolicy {
  return retryPolicySchema.parse(Object.assign({}, ...layers.filter(Boolean)));
}
