/**
 * A daily cron DAG with catchup: on start, the scheduler creates one run per missed day since
 * startDate, each with its own data interval, then one more every day at 00:00 UTC.
 */
import { dag, task } from 'updraft';

const DAY = 86_400_000;
const today = new Date(Math.floor(Date.now() / DAY) * DAY);

const extract = task('extract', (_: void, ctx) => {
  ctx.log.info('extracting %s → %s', ctx.dataIntervalStart?.toISOString(), ctx.dataIntervalEnd?.toISOString());
  return { day: ctx.dataIntervalStart?.toISOString().slice(0, 10) ?? null };
});

const load = task('load', ({ row }: { row: { day: string | null } }, ctx) => {
  ctx.log.info('loaded %s', row.day);
  return row.day;
});

export default dag({
  dagId: 'cron_catchup',
  schedule: '@daily',
  startDate: new Date(today.getTime() - 3 * DAY),
  catchup: true,
  maxActiveRuns: 2,
  tags: ['example'],
}, () => {
  load({ row: extract() });
});
