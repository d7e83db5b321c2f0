/**
 * Seed 001, the run queue: every run of this DAG carries the run tag `team=analytics`, and
 * updraft.config.json limits that tag to one running run (`runTagConcurrencyLimits`), on top
 * of the deployment-wide `maxConcurrentRuns`. Catchup queues three runs; they start one at a
 * time, by priority then FIFO, while runs of other DAGs are not held back.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { dag, task } from 'updraft';

const DAY = 86_400_000;
const today = new Date(Math.floor(Date.now() / DAY) * DAY);

const report = task('report', async (_: void, ctx) => {
  await sleep(500, undefined, { signal: ctx.signal });
  return ctx.dataIntervalStart?.toISOString().slice(0, 10) ?? null;
});

export default dag({
  dagId: 'concurrency_run_queue', schedule: '@daily', startDate: new Date(today.getTime() - 3 * DAY), catchup: true,
  maxActiveRuns: 3, runTags: { team: 'analytics' }, tags: ['example', 'seed-001'],
}, () => {
  report();
});
