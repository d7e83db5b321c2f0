/**
 * Seed 001, executor-level limits: `maxActiveTasksPerRun: 2` caps how many TIs of one run run
 * at once, whatever else is free; other runs are not affected. `maxActiveTisPerDagrun` does
 * the same for one task's mapped TIs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { dag, task } from 'updraft';

const step = task('step', async ({ n }: { n: number }, ctx) => {
  await sleep(300, undefined, { signal: ctx.signal });
  return n;
});

const mappedStep = task({ taskId: 'mapped_step', maxActiveTisPerDagrun: 1 }, async ({ n }: { n: number }, ctx) => {
  await sleep(100, undefined, { signal: ctx.signal });
  return n * n;
});

export default dag({
  dagId: 'concurrency_executor', schedule: '@daily', startDate: '2026-01-01T00:00:00Z',
  maxActiveTasksPerRun: 2, tags: ['example', 'seed-001'],
}, () => {
  for (let n = 0; n < 6; n++) step({ n });
  mappedStep.expand({ n: [1, 2, 3] });
});
