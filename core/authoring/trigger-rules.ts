/**
 * Trigger rules: the per-task condition on direct upstream outcomes that decides
 * whether a task instance waits, runs, or is resolved without running. The
 * semantics (including the early decisions taken before every upstream is done,
 * and the choice between `skipped` and `upstream_failed`) follow Apache
 * Airflow's TriggerRuleDep with upstream-failure flagging enabled, restricted to
 * plain (unmapped, non-setup) upstream task instances.
 */

export const TriggerRule = {
  ALL_SUCCESS: 'all_success',
  ALL_FAILED: 'all_failed',
  ALL_DONE: 'all_done',
  ALL_DONE_MIN_ONE_SUCCESS: 'all_done_min_one_success',
  ONE_SUCCESS: 'one_success',
  ONE_FAILED: 'one_failed',
  ONE_DONE: 'one_done',
  NONE_FAILED: 'none_failed',
  NONE_SKIPPED: 'none_skipped',
  NONE_FAILED_MIN_ONE_SUCCESS: 'none_failed_min_one_success',
  ALL_SKIPPED: 'all_skipped',
  ALWAYS: 'always',
} as const;
export type TriggerRule = (typeof TriggerRule)[keyof typeof TriggerRule];

export const TRIGGER_RULES: readonly TriggerRule[] = Object.freeze(Object.values(TriggerRule));

/** Counts over the direct upstream task instances; anything not counted as done is pending. */
export interface UpstreamCounts {
  total: number;
  success: number;
  failed: number;
  upstreamFailed: number;
  skipped: number;
}

export type RuleVerdict = 'wait' | 'run' | 'skip' | 'upstream_failed';

export function evaluateTriggerRule(rule: TriggerRule, c: UpstreamCounts): RuleVerdict {
  checkCounts(c);
  const { total, success, failed, upstreamFailed, skipped } = c;
  // A root task has nothing to wait for, whatever its rule says.
  if (total === 0 || rule === TriggerRule.ALWAYS) return 'run';

  const done = success + failed + upstreamFailed + skipped;
  const allDone = done >= total;
  const anyFailure = failed + upstreamFailed > 0;

  switch (rule) {
    case TriggerRule.ALL_SUCCESS:
      // A failure outranks a skip when both are already visible.
      if (anyFailure) return 'upstream_failed';
      if (skipped > 0) return 'skip';
      return success === total ? 'run' : 'wait';

    case TriggerRule.ALL_FAILED:
      if (success + skipped > 0) return 'skip';
      return failed + upstreamFailed === total ? 'run' : 'wait';

    case TriggerRule.ALL_DONE:
      return allDone ? 'run' : 'wait';

    case TriggerRule.ALL_DONE_MIN_ONE_SUCCESS:
      // Airflow treats any skipped upstream as disqualifying, immediately,
      // even when other upstreams succeeded.
      if (skipped > 0) return 'skip';
      if (!allDone) return 'wait';
      return success > 0 ? 'run' : 'upstream_failed';

    case TriggerRule.ONE_SUCCESS:
      if (success > 0) return 'run';
      if (!allDone) return 'wait';
      return skipped === done ? 'skip' : 'upstream_failed';

    case TriggerRule.ONE_FAILED:
      if (anyFailure) return 'run';
      return allDone ? 'skip' : 'wait';

    case TriggerRule.ONE_DONE:
      // upstream_failed does not count as "done by running" here, so an
      // all-upstream_failed fan-in is skipped rather than run.
      if (success + failed > 0) return 'run';
      return allDone ? 'skip' : 'wait';

    case TriggerRule.NONE_FAILED:
      if (anyFailure) return 'upstream_failed';
      return allDone ? 'run' : 'wait';

    case TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS:
      if (anyFailure) return 'upstream_failed';
      if (skipped === total) return 'skip';
      return allDone ? 'run' : 'wait';

    case TriggerRule.NONE_SKIPPED:
      if (skipped > 0) return 'skip';
      return allDone ? 'run' : 'wait';

    case TriggerRule.ALL_SKIPPED:
      if (success + failed + upstreamFailed > 0) return 'skip';
      return skipped === total ? 'run' : 'wait';

    default: {
      const unknown: never = rule;
      throw new TypeError(`unknown trigger rule "${String(unknown)}"`);
    }
  }
}

/**
 * A teardown's rule (Airflow's ALL_DONE_SETUP_SUCCESS): wait until every direct upstream is
 * done, then run if one of its setups succeeded (or it has none); skip if none did.
 */
export function evaluateTeardownRule(all: UpstreamCounts, setups: UpstreamCounts): RuleVerdict {
  checkCounts(all);
  if (all.success + all.failed + all.upstreamFailed + all.skipped < all.total) return 'wait';
  return setups.total > 0 && setups.success === 0 ? 'skip' : 'run';
}

// Inconsistent counts mean a bookkeeping bug upstream; a verdict built on them
// would silently run or skip the wrong task, so fail loudly instead.
function checkCounts(c: UpstreamCounts): void {
  for (const [key, value] of Object.entries(c)) {
    if (!Number.isInteger(value) || value < 0) {
      throw new RangeError(`upstream count "${key}" must be a non-negative integer, got ${String(value)}`);
    }
  }
  const done = c.success + c.failed + c.upstreamFailed + c.skipped;
  if (done > c.total) {
    throw new RangeError(`upstream counts add up to ${done} finished of ${c.total} total`);
  }
}
