/** Seed 000 at full size with mapping: 300 items, each an async 3 s wait, one TI per item. */
import { setTimeout as sleep } from 'node:timers/promises';
import { dag, task } from 'updraft';

const createItems = task('create_items', () => Array.from({ length: 300 }, (_, i) => `item_${i}`));
const processItem = task('process_item', async ({ item }: { item: string }, ctx) => {
  await sleep(3000, undefined, { signal: ctx.signal });
  return item;
});
const collect = task('collect_results', ({ results }: { results: string[] }) => results.length);

export default dag({ dagId: 'seed000_expand', schedule: '@daily', startDate: '2026-01-01T00:00:00Z', maxActiveTasks: 400, tags: ['example', 'seed-000'] }, () => {
  collect({ results: processItem.expand({ item: createItems() }) });
});
