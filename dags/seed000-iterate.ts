/**
 * Seed 000 at full size with iterate: the 300 items × 3 s run inside ONE TI on the worker's
 * loop (one slot), 300 at a time, with finished items checkpointed so a retry skips them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { dag, task } from 'updraft';

const createItems = task('create_items', () => Array.from({ length: 300 }, (_, i) => `item_${i}`));
const processItem = task('process_item', async ({ item }: { item: string }, ctx) => {
  await sleep(3000, undefined, { signal: ctx.signal });
  return item;
});
const collect = task('collect_results', ({ results }: { results: string[] }) => results.length);

export default dag({ dagId: 'seed000_iterate', schedule: '@daily', startDate: '2026-01-01T00:00:00Z', tags: ['example', 'seed-000'] }, () => {
  collect({ results: processItem.iterate({ item: createItems() }, { concurrency: 300 }) });
});
