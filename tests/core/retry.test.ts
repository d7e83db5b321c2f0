import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RETRY_DELAY_MS,
  MAX_RETRY_DELAY_MS,
  retryDelayMs,
  shouldRetry,
  type RetryPolicy,
} from '../../core/authoring/retry.ts';

function policy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  return { retries: 3, retryDelayMs: 10_000, retryExponentialBackoff: false, maxRetryDelayMs: null, ...overrides };
}

const backoff = policy({ retryExponentialBackoff: true });

describe('retryDelayMs without backoff', () => {
  it('returns the plain delay for every try', () => {
    for (const tryNumber of [1, 2, 5, 50]) {
      expect(retryDelayMs(policy(), tryNumber, 'k')).toBe(10_000);
    }
  });

  it('defaults to five minutes', () => {
    expect(DEFAULT_RETRY_DELAY_MS).toBe(300_000);
    expect(retryDelayMs(policy({ retryDelayMs: DEFAULT_RETRY_DELAY_MS }), 1, 'k')).toBe(300_000);
  });
});

describe('retryDelayMs with exponential backoff', () => {
  it('stays within [d*2^(n-1), 2*d*2^(n-1)) whole seconds for each try', () => {
    for (let tryNumber = 1; tryNumber <= 8; tryNumber++) {
      const minMs = 10_000 * 2 ** (tryNumber - 1);
      for (const key of ['a', 'b', 'c', 'dag#task#2024-01-01#' + tryNumber]) {
        const delay = retryDelayMs(backoff, tryNumber, key);
        expect(delay).toBeGreaterThanOrEqual(minMs);
        expect(delay).toBeLessThan(2 * minMs);
        expect(delay % 1000).toBe(0);
      }
    }
  });

  it('matches the formula minBackoff + sha1(key) mod minBackoff', () => {
    const key = 'etl#load#2024-01-01T00:00:00+00:00#3';
    const minBackoffS = 40; // 10 s * 2^(3-1)
    const hash = BigInt('0x' + createHash('sha1').update(key).digest('hex'));
    const expected = (minBackoffS + Number(hash % BigInt(minBackoffS))) * 1000;
    expect(retryDelayMs(backoff, 3, key)).toBe(expected);
  });

  it('is deterministic for the same key', () => {
    const first = retryDelayMs(backoff, 4, 'dag#task#run#4');
    for (let i = 0; i < 5; i++) expect(retryDelayMs(backoff, 4, 'dag#task#run#4')).toBe(first);
  });

  it('spreads different keys across the window', () => {
    const delays = new Set(Array.from({ length: 20 }, (_, i) => retryDelayMs(backoff, 6, `task-${i}`)));
    expect(delays.size).toBeGreaterThan(1);
  });

  it('rounds sub-second and zero delays up to at least one second', () => {
    expect(retryDelayMs(policy({ retryExponentialBackoff: true, retryDelayMs: 0 }), 1, 'k')).toBe(1000);
    // ceil(0.3 s * 2) = 1 s, and any hash mod 1 is 0, so no jitter is left.
    expect(retryDelayMs(policy({ retryExponentialBackoff: true, retryDelayMs: 300 }), 2, 'k')).toBe(1000);
  });

  it('applies maxRetryDelayMs after the jitter', () => {
    const capped = policy({ retryExponentialBackoff: true, maxRetryDelayMs: 60_000 });
    expect(retryDelayMs(capped, 1, 'k')).toBeLessThan(20_000);
    expect(retryDelayMs(capped, 4, 'k')).toBe(60_000); // min backoff 80 s > cap
  });

  it('keeps huge try numbers finite and under the ceilings', () => {
    for (const tryNumber of [60, 1_024, 1_000_000, Number.MAX_SAFE_INTEGER]) {
      const uncapped = retryDelayMs(backoff, tryNumber, 'k');
      expect(Number.isFinite(uncapped)).toBe(true);
      expect(uncapped).toBe(MAX_RETRY_DELAY_MS);
      const capped = policy({ retryExponentialBackoff: true, maxRetryDelayMs: 3_600_000 });
      expect(retryDelayMs(capped, tryNumber, 'k')).toBe(3_600_000);
    }
  });

  it('rejects nonsensical try numbers and delays', () => {
    expect(() => retryDelayMs(backoff, 0, 'k')).toThrow(RangeError);
    expect(() => retryDelayMs(backoff, 1.5, 'k')).toThrow(RangeError);
    expect(() => retryDelayMs(policy({ retryDelayMs: -1 }), 1, 'k')).toThrow(RangeError);
  });
});

describe('shouldRetry', () => {
  it('retries while the failed try is within the retry budget', () => {
    const p = policy({ retries: 2 });
    expect(shouldRetry(p, 1)).toBe(true);
    expect(shouldRetry(p, 2)).toBe(true);
    expect(shouldRetry(p, 3)).toBe(false);
  });

  it('never retries with zero retries', () => {
    expect(shouldRetry(policy({ retries: 0 }), 1)).toBe(false);
  });
});
