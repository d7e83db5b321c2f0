/**
 * Seed 001, tag concurrency limits within a run, in each of the three forms:
 * - `{ key: 'database', value: 'redshift', limit: 1 }`: one redshift task at a time;
 * - `{ key: 'region', limit: 2 }`: two tasks with any `region` tag, all values together;
 * - `{ key: 'customer', value: { applyLimitPerUniqueValue: true }, limit: 1 }`: one task per
 *   customer at a time, customers in parallel.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { dag, task } from 'updraft';

const work = (taskId: string, tags: Record<string, string>) =>
  task({ taskId, tags }, async (_: void, ctx) => {
    await sleep(200, undefined, { signal: ctx.signal });
    return ctx.taskId;
  });

export default dag({
  dagId: 'concurrency_tags', schedule: '@daily', startDate: '2026-01-01T00:00:00Z', tags: ['example', 'seed-001'],
  tagConcurrencyLimits: [
    { key: 'database', value: 'redshift', limit: 1 },
    { key: 'region', limit: 2 },
    { key: 'customer', value: { applyLimitPerUniqueValue: true }, limit: 1 },
  ],
}, () => {
  for (const id of ['load_a', 'load_b', 'load_c']) work(id, { database: 'redshift' })();
  for (const [id, region] of [['eu_1', 'eu'], ['eu_2', 'eu'], ['us_1', 'us']]) work(id, { region })();
  for (const [id, customer] of [['acme_1', 'acme'], ['acme_2', 'acme'], ['globex_1', 'globex']]) work(id, { customer })();
});
