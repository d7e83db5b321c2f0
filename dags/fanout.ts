/**
 * Seed 000's fan-out/fan-in: create items, process each, collect the results.
 * Built from plain tasks (one per item) until mapping replaces the loop.
 */
import { dag, task } from 'updraft';

const ITEMS = 5;

const createItems = task('create_items', () => Array.from({ length: ITEMS }, (_, i) => `item_${i}`));

const processItem = task('process_item', async ({ items, index }: { items: string[]; index: number }, ctx) => {
  await new Promise((r) => setTimeout(r, 200));
  ctx.log.info('processed %s', items[index]);
  return items[index].toUpperCase();
});

const collect = task('collect_results', ({ results }: { results: string[] }, ctx) => {
  ctx.log.info('collected %d results', results.length);
  return results;
});

export default dag({ dagId: 'fanout', schedule: '@daily', startDate: '2026-01-01T00:00:00Z', tags: ['example', 'seed-000'] }, () => {
  const items = createItems();
  const processed = Array.from({ length: ITEMS }, (_, index) => processItem({ items, index }));
  collect({ results: processed });
});
