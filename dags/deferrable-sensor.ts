/**
 * A DateTimeSensor-based wait. The sensor defers at once with a DateTimeTrigger, so no worker
 * slot is held while it waits; the triggerer fires it at the target time and the task
 * resumes on a warm worker. `report` runs after it, like any downstream task.
 */
import { z } from 'zod';
import { dag, task, DateTimeSensor } from 'updraft';

const report = task('report', (_: void, ctx) => {
  ctx.log.info('the wait is over for run %s', ctx.runId);
  return 'waited';
});

export default dag({
  dagId: 'deferrable_sensor', schedule: '@daily', startDate: '2026-01-01T00:00:00Z', tags: ['example', 'deferrable'],
  // The UI's trigger form is made from this schema; scheduled runs take the default.
  params: z.object({ wait_seconds: z.number().int().min(0).max(3600).default(3).describe('How long the sensor waits before report runs') }),
}, () => {
  // wait_seconds after the sensor first runs; a fixed time or the data interval works too.
  const wait = new DateTimeSensor({ taskId: 'wait_three_seconds', targetTime: (ctx) => new Date(Date.now() + Number(ctx.params.wait_seconds) * 1000), softFail: false });
  wait.then(report());
});
