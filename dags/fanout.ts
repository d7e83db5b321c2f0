/**
 * Seed 000's fan-out/fan-in with dynamic task mapping: `create_items` returns a list,
 * `process_item` is expanded over it (one TI per item, created when the list exists, each
 * retrying on its own), and `collect_results` receives every result in map-index order.
 */
import { dag, task } from 'updraft';

const createItems = task('create_items', () => Array.from({ length: 5 }, (_, i) => `item_${i}`));

const processItem = task({ taskId: 'process_item', retries: 1, retryDelay: '1s' }, async ({ item }: { item: string }, ctx) => {
  await new Promise((r) => setTimeout(r, 200));
  ctx.log.info('[%s] processed %s', ctx.mapIndex, item);
  return item.toUpperCase();
});

const collect = task('collect_results', ({ results }: { results: string[] }, ctx) => {
  ctx.log.info('collected %d results: %s', results.length, results.join(', '));
  return results;
});

export default dag({ dagId: 'fanout', schedule: '@daily', startDate: '2026-01-01T00:00:00Z', tags: ['example', 'seed-000'] }, () => {
  const processed = processItem.expand({ item: createItems() });
  collect({ results: processed });
});
