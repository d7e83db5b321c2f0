/**
 * Trigger rules and retries in one run:
 * - `flaky` fails its first try and succeeds on the retry (exponential backoff from 1 s);
 * - `always_fails` fails for good, so `on_success_path` (all_success) becomes upstream_failed,
 *   while `cleanup` (all_done) and `alert` (one_failed) still run;
 * - `maybe_skip` skips itself, so `needs_no_skips` (none_skipped) is skipped and
 *   `tolerant` (none_failed_min_one_success) runs on flaky's success;
 * - `final` (all_done) ends the run, which succeeds because its only leaf succeeded.
 */
import { dag, task, chain, TaskSkipped, TriggerRule } from 'updraft';

const flaky = task({ taskId: 'flaky', retries: 2, retryDelay: '1s', retryExponentialBackoff: true }, (_: void, ctx) => {
  if (ctx.tryNumber < 2) throw new Error(`transient failure on try ${ctx.tryNumber}`);
  return 'ok';
});
const alwaysFails = task({ taskId: 'always_fails', retries: 0 }, () => {
  throw new Error('this task always fails');
});
const maybeSkip = task('maybe_skip', () => {
  throw new TaskSkipped('nothing to do today');
});
const step = (taskId: string, triggerRule: TriggerRule) => task({ taskId, triggerRule }, (_: void, ctx) => `${ctx.taskId} ran`);

export default dag({ dagId: 'trigger_rules_retries', schedule: '@daily', startDate: '2026-01-01T00:00:00Z', tags: ['example'] }, () => {
  const f = flaky();
  const a = alwaysFails();
  const s = maybeSkip();
  const onSuccessPath = step('on_success_path', TriggerRule.ALL_SUCCESS)();
  const cleanup = step('cleanup', TriggerRule.ALL_DONE)();
  const alert = step('alert', TriggerRule.ONE_FAILED)();
  const needsNoSkips = step('needs_no_skips', TriggerRule.NONE_SKIPPED)();
  const tolerant = step('tolerant', TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)();
  const final = step('final', TriggerRule.ALL_DONE)();
  chain([f, a], onSuccessPath);
  chain([f, a], cleanup);
  chain([f, a], alert);
  chain([f, s], needsNoSkips);
  chain([f, s], tolerant);
  chain([onSuccessPath, cleanup, alert, needsNoSkips, tolerant], final);
});
