/**
 * A DateTimeSensor-based wait. The sensor defers at once with a DateTimeTrigger, so no worker
 * slot is held while it waits; the triggerer fires it at the target time and the task
 * resumes on a warm worker. `report` runs after it, like any downstream task.
 */
import { dag, task, DateTimeSensor } from 'updraft';

const report = task('report', (_: void, ctx) => {
  ctx.log.info('the wait is over for run %s', ctx.runId);
  return 'waited';
});

export default dag({ dagId: 'deferrable_sensor', schedule: '@daily', startDate: '2026-01-01T00:00:00Z', tags: ['example', 'deferrable'] }, () => {
  // Three seconds after the sensor first runs; a fixed time or the data interval works too.
  const wait = new DateTimeSensor({ taskId: 'wait_three_seconds', targetTime: () => new Date(Date.now() + 3000), softFail: false });
  wait.then(report());
});
