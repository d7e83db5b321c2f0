/**
 * Identical deferrals share one trigger: 100 TIs deferring on the same name and kwargs make
 * one row and one run() in the triggerer, and its single event resumes all 100.
 */
import { describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { TaskState } from '../../core/index.ts';
import { counter, openGate, useDeferSuite } from './harness.ts';

describe('trigger dedup', () => {
  const suite = useDeferSuite('defer-core');

  it('runs one trigger for 100 identical deferrals and resumes all 100 with its payload', async () => {
    const stack = await suite.open();
    const { runPk } = await stack.trigger('defer_dedup');
    const deferred = await stack.wait(async () => {
      const tis = await stack.tis(runPk);
      return tis.length === 100 && tis.every((t) => t.state === TaskState.DEFERRED) ? tis : null;
    }, 'all 100 TIs to be deferred', 120_000);

    const rows = await stack.triggerRows();
    expect(rows).toHaveLength(1);
    expect(rows[0].name).toBe('test.GateTrigger');
    expect(new Set(deferred.map((t) => t.triggerId))).toEqual(new Set([rows[0].id]));
    await stack.wait(async () => counter('gate.dedup.runs') >= 1, 'the triggerer to start the trigger');
    expect(stack.triggerer!.runs.size).toBe(1);

    openGate('dedup');
    expect(await stack.finished(runPk, 120_000)).toBe('success');
    expect(counter('gate.dedup.runs')).toBe(1);
    const tis = await stack.tis(runPk);
    expect(tis.filter((t) => t.state === TaskState.SUCCESS && t.tryNumber === 1)).toHaveLength(100);
    const values = await stack.database.rows<{ value: unknown }>(
      sql`select value from xcom where run_pk = ${runPk} and key = 'return_value'`);
    expect(values).toHaveLength(100);
    for (const v of values) expect(v.value).toEqual({ gate: 'dedup', tokenChars: 0 });
    expect(stack.triggerer!.applied).toBe(100);
    expect(await stack.triggerRows()).toEqual([]);
  });
});
