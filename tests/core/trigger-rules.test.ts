import { describe, expect, it } from 'vitest';
import {
  TRIGGER_RULES,
  TriggerRule,
  evaluateTriggerRule,
  type RuleVerdict,
  type UpstreamCounts,
} from '../../core/authoring/trigger-rules.ts';

// Compact notation: total upstreams plus whatever has finished; the rest is pending.
function up(total: number, done: { s?: number; f?: number; uf?: number; sk?: number } = {}): UpstreamCounts {
  return { total, success: done.s ?? 0, failed: done.f ?? 0, upstreamFailed: done.uf ?? 0, skipped: done.sk ?? 0 };
}

type Case = [label: string, counts: UpstreamCounts, expected: RuleVerdict];

const cases: Record<TriggerRule, Case[]> = {
  all_success: [
    ['nothing finished', up(3), 'wait'],
    ['some succeeded', up(3, { s: 2 }), 'wait'],
    ['all succeeded', up(3, { s: 3 }), 'run'],
    ['early failure', up(3, { s: 1, f: 1 }), 'upstream_failed'],
    ['early upstream_failed', up(3, { uf: 1 }), 'upstream_failed'],
    ['early skip', up(3, { sk: 1 }), 'skip'],
    ['final with a skip', up(3, { s: 2, sk: 1 }), 'skip'],
    ['failure outranks skip', up(3, { f: 1, sk: 1 }), 'upstream_failed'],
  ],
  all_failed: [
    ['nothing finished', up(2), 'wait'],
    ['one failed, one pending', up(2, { f: 1 }), 'wait'],
    ['failed plus upstream_failed', up(2, { f: 1, uf: 1 }), 'run'],
    ['all failed', up(2, { f: 2 }), 'run'],
    ['early success', up(3, { s: 1 }), 'skip'],
    ['early skip', up(3, { sk: 1, f: 1 }), 'skip'],
  ],
  all_done: [
    ['nothing finished', up(2), 'wait'],
    ['one pending', up(4, { s: 1, f: 1, uf: 1 }), 'wait'],
    ['mixed, all finished', up(4, { s: 1, f: 1, uf: 1, sk: 1 }), 'run'],
    ['all skipped', up(2, { sk: 2 }), 'run'],
    ['all failed', up(2, { f: 2 }), 'run'],
  ],
  all_done_min_one_success: [
    ['one success, rest pending', up(3, { s: 1 }), 'wait'],
    ['failure, rest pending', up(3, { f: 1 }), 'wait'],
    ['all succeeded', up(3, { s: 3 }), 'run'],
    ['success among failures', up(3, { s: 1, f: 1, uf: 1 }), 'run'],
    ['only failures', up(3, { f: 2, uf: 1 }), 'upstream_failed'],
    ['early skip', up(3, { sk: 1 }), 'skip'],
    ['skip despite successes', up(3, { s: 2, sk: 1 }), 'skip'],
    ['skip outranks failure', up(3, { f: 2, sk: 1 }), 'skip'],
    ['all skipped', up(2, { sk: 2 }), 'skip'],
  ],
  one_success: [
    ['nothing finished', up(3), 'wait'],
    ['early success', up(3, { s: 1 }), 'run'],
    ['success after failures', up(3, { f: 2, s: 1 }), 'run'],
    ['failure, rest pending', up(3, { f: 1 }), 'wait'],
    ['done, failures and skips', up(3, { f: 2, sk: 1 }), 'upstream_failed'],
    ['done, only upstream_failed', up(2, { uf: 2 }), 'upstream_failed'],
    ['done, all skipped', up(3, { sk: 3 }), 'skip'],
  ],
  one_failed: [
    ['nothing finished', up(3), 'wait'],
    ['early failure', up(3, { f: 1 }), 'run'],
    ['early upstream_failed', up(3, { uf: 1 }), 'run'],
    ['successes, one pending', up(3, { s: 2 }), 'wait'],
    ['done without failure', up(3, { s: 2, sk: 1 }), 'skip'],
    ['done, all skipped', up(2, { sk: 2 }), 'skip'],
  ],
  one_done: [
    ['nothing finished', up(3), 'wait'],
    ['early success', up(3, { s: 1 }), 'run'],
    ['early failure', up(3, { f: 1 }), 'run'],
    ['skip, rest pending', up(3, { sk: 1 }), 'wait'],
    ['upstream_failed, rest pending', up(3, { uf: 1 }), 'wait'],
    ['done, all skipped', up(3, { sk: 3 }), 'skip'],
    ['done, all upstream_failed', up(2, { uf: 2 }), 'skip'],
    ['done, skips and upstream_failed', up(3, { sk: 2, uf: 1 }), 'skip'],
    ['done, one real failure', up(3, { sk: 2, f: 1 }), 'run'],
  ],
  none_failed: [
    ['nothing finished', up(3), 'wait'],
    ['success, rest pending', up(3, { s: 1 }), 'wait'],
    ['early failure', up(3, { f: 1 }), 'upstream_failed'],
    ['early upstream_failed', up(3, { s: 1, uf: 1 }), 'upstream_failed'],
    ['done, successes and skips', up(3, { s: 1, sk: 2 }), 'run'],
    ['done, all skipped', up(2, { sk: 2 }), 'run'],
  ],
  none_failed_min_one_success: [
    ['nothing finished', up(3), 'wait'],
    ['skips, rest pending', up(3, { sk: 2 }), 'wait'],
    ['early failure', up(3, { f: 1 }), 'upstream_failed'],
    ['upstream_failed with skips', up(3, { uf: 1, sk: 2 }), 'upstream_failed'],
    ['done, all skipped', up(3, { sk: 3 }), 'skip'],
    ['done, success and skips', up(3, { s: 1, sk: 2 }), 'run'],
    ['done, all succeeded', up(3, { s: 3 }), 'run'],
  ],
  none_skipped: [
    ['nothing finished', up(3), 'wait'],
    ['successes, one pending', up(3, { s: 2 }), 'wait'],
    ['early skip', up(3, { sk: 1 }), 'skip'],
    ['done, mixed without skips', up(3, { s: 1, f: 1, uf: 1 }), 'run'],
    ['done, all failed', up(3, { f: 3 }), 'run'],
  ],
  all_skipped: [
    ['nothing finished', up(3), 'wait'],
    ['skips, rest pending', up(3, { sk: 2 }), 'wait'],
    ['done, all skipped', up(3, { sk: 3 }), 'run'],
    ['early success', up(3, { s: 1 }), 'skip'],
    ['early failure', up(3, { sk: 1, f: 1 }), 'skip'],
    ['early upstream_failed', up(3, { uf: 1 }), 'skip'],
  ],
  always: [
    ['nothing finished', up(3), 'run'],
    ['all failed', up(3, { f: 3 }), 'run'],
    ['all skipped', up(3, { sk: 3 }), 'run'],
  ],
};

describe('TRIGGER_RULES', () => {
  it('lists the twelve rules once each', () => {
    expect(TRIGGER_RULES).toHaveLength(12);
    expect(new Set(TRIGGER_RULES).size).toBe(12);
    expect([...TRIGGER_RULES].sort()).toEqual(Object.keys(cases).sort());
  });
});

describe('evaluateTriggerRule', () => {
  for (const rule of TRIGGER_RULES) {
    describe(rule, () => {
      it.each(cases[rule])('%s', (_label, counts, expected) => {
        expect(evaluateTriggerRule(rule, counts)).toBe(expected);
      });

      it('runs a task without upstreams', () => {
        expect(evaluateTriggerRule(rule, up(0))).toBe('run');
      });
    });
  }

  it('rejects counts that cannot describe real upstreams', () => {
    expect(() => evaluateTriggerRule(TriggerRule.ALL_DONE, up(1, { s: 1, f: 1 }))).toThrow(RangeError);
    expect(() => evaluateTriggerRule(TriggerRule.ALL_DONE, up(2, { s: -1 }))).toThrow(RangeError);
    expect(() => evaluateTriggerRule(TriggerRule.ALL_DONE, up(2.5))).toThrow(RangeError);
  });

  it('rejects an unknown rule', () => {
    expect(() => evaluateTriggerRule('dummy' as TriggerRule, up(1))).toThrow(TypeError);
  });
});
