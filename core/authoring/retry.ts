/**
 * Retry policy for failed task tries: whether another try is allowed and how
 * long to wait before it. The delay follows Apache Airflow's formula: a fixed
 * delay, or exponential backoff with deterministic jitter derived from a SHA-1
 * of a caller-chosen key, so every scheduler process computes the same instant
 * for the same failed try without coordinating.
 */
import { createHash } from 'node:crypto';

export interface RetryPolicy {
  retries: number;
  retryDelayMs: number;
  retryExponentialBackoff: boolean;
  maxRetryDelayMs: number | null;
}

export const DEFAULT_RETRY_DELAY_MS = 300_000;

/**
 * Hard ceiling on a backoff delay, Airflow's `max_task_retry_delay` default
 * (24 h). It applies even without `maxRetryDelayMs`, as in Airflow, so runaway
 * try numbers cannot park a task for years.
 */
export const MAX_RETRY_DELAY_MS = 86_400_000;

const MAX_RETRY_DELAY_S = MAX_RETRY_DELAY_MS / 1000;
// 2^64 times any sane delay is still a finite double, and far past the ceiling.
const MAX_EXPONENT = 64;

/**
 * Delay before the try after `tryNumber` (the 1-based try that just failed).
 * `jitterKey` should identify that failed try uniquely (Airflow hashes
 * `dag_id#task_id#logical_date#try_number`); the same key always yields the
 * same delay.
 */
export function retryDelayMs(policy: RetryPolicy, tryNumber: number, jitterKey: string): number {
  if (!Number.isInteger(tryNumber) || tryNumber < 1) {
    throw new RangeError(`tryNumber must be an integer >= 1, got ${tryNumber}`);
  }
  if (!Number.isFinite(policy.retryDelayMs) || policy.retryDelayMs < 0) {
    throw new RangeError(`retryDelayMs must be a finite number >= 0, got ${policy.retryDelayMs}`);
  }
  if (!policy.retryExponentialBackoff) return policy.retryDelayMs;

  const exponent = Math.min(tryNumber - 1, MAX_EXPONENT);
  // Clamping before the jitter is equivalent to Airflow's clamp after it: once
  // minBackoff reaches the ceiling, minBackoff + jitter exceeds it anyway.
  const minBackoffS = Math.min(
    Math.max(Math.ceil((policy.retryDelayMs / 1000) * 2 ** exponent), 1),
    MAX_RETRY_DELAY_S,
  );
  // The digest is a 160-bit integer; only BigInt keeps the modulo exact.
  const hash = BigInt(`0x${createHash('sha1').update(jitterKey).digest('hex')}`);
  const jitterS = Number(hash % BigInt(minBackoffS));
  const delayMs = Math.min(minBackoffS + jitterS, MAX_RETRY_DELAY_S) * 1000;

  return policy.maxRetryDelayMs === null ? delayMs : Math.min(delayMs, policy.maxRetryDelayMs);
}

/** Whether the try that just failed (1-based `tryNumber`) leaves another try. */
export function shouldRetry(policy: RetryPolicy, tryNumber: number): boolean {
  return tryNumber <= policy.retries;
}
