/**
 * The worker decides downstream tasks from which states each upstream task has TIs in (one
 * index probe per task and state) instead of how many. That is only sound if every trigger
 * rule gives the same verdict on presence as on counts; this checks it over random runs.
 */
import { describe, expect, it } from 'vitest';
import { evaluateTriggerRule, TRIGGER_RULES, TaskState } from '../../core/index.ts';
import { countUpstream, statesFromProbe, type StateCounts } from '../../core/runtime/dependencies.ts';

const STATES = Object.values(TaskState);

/** A small deterministic generator, so a failure reproduces. */
function rng(seed: number) {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x / 0x7fffffff;
  };
}

describe('trigger rules on state presence', () => {
  it('decide exactly as on counts, for every rule, over 20,000 random upstream outcomes', () => {
    const next = rng(42);
    let decided = 0;
    for (let i = 0; i < 20_000; i++) {
      const upstream = new Set<string>();
      const counts = new Map<string, StateCounts>();
      const rows: Record<string, unknown>[] = [];
      const tasks = 1 + Math.floor(next() * 3);
      for (let t = 0; t < tasks; t++) {
        const id = `up${t}`;
        upstream.add(id);
        const c: StateCounts = {};
        for (const state of STATES) {
          // Mostly absent; present ones get 1 to 5,000 TIs (a mapped task).
          if (next() < 0.75) continue;
          c[state] = 1 + Math.floor(next() * 5000);
          rows.push({ task_id: id, state });
        }
        counts.set(id, c);
      }
      const presence = statesFromProbe([...upstream], rows);
      for (const rule of TRIGGER_RULES) {
        const byCount = evaluateTriggerRule(rule, countUpstream(upstream, counts));
        const byPresence = evaluateTriggerRule(rule, countUpstream(upstream, presence));
        expect(byPresence, `${rule} with ${JSON.stringify([...counts])}`).toBe(byCount);
        if (byCount !== 'wait') decided++;
      }
    }
    // The sample must exercise decisions, not only waits.
    expect(decided).toBeGreaterThan(10_000);
  });

  it('reports a probed task with no TIs as present with no states', () => {
    expect(statesFromProbe(['a', 'b'], [{ task_id: 'a', state: 'success' }])).toEqual(new Map([['a', { success: 1 }], ['b', {}]]));
  });
});
