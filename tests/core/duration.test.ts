import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../core/index.ts';
import { durationSchema } from '../../core/authoring/duration.ts';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1h30m', 5_400_000],
    ['1m30s250ms', 90_250],
    ['1.5s', 1_500],
    ['0s', 0],
    ['  45s  ', 45_000],
  ])('reads "%s" as %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each(['', '   ', '5', 'ms', '5 minutes', '5m 30s', '-5s', '5M', '1w', '5s!', '1.5.5s', '1e3ms'])('rejects "%s"', (input) => {
    expect(parseDuration(input)).toBeNull();
  });
});

describe('durationSchema', () => {
  it('accepts milliseconds and duration strings', () => {
    expect(durationSchema.parse(1_500)).toBe(1_500);
    expect(durationSchema.parse(0)).toBe(0);
    expect(durationSchema.parse('2m')).toBe(120_000);
  });

  it('rejects a negative number', () => {
    const result = durationSchema.safeParse(-1);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.message)).toEqual(['Too small: expected number to be >=0']);
  });

  it('rejects a malformed string and names it', () => {
    const result = durationSchema.safeParse('soon');
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.message)).toEqual(['"soon" is not a duration; use milliseconds or a string like "30s", "5m", "1h30m"']);
  });
});
