/**
 * Benchmark DAG for the fanout bench: the same shape as `bench_seed000_expand`, but
 * `process_item` runs every item inside ONE TI with `iterate()`, 300 at a time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { dag, task } from 'updraft';

const createItems = task('create_items', async () => Array.from({ length: 300 }, (_, i) => `item_${i}`));

const processItem = task('process_item', async ({ item }: { item: string }) => {
  await sleep(3000);
  return item.toUpperCase();
});

const collect = task('collect', async ({ results }: { results: string[] }) => results.length);

export default dag({ dagId: 'bench_seed000_iterate', schedule: null }, () => {
  collect({ results: processItem.iterate({ item: createItems() }, { concurrency: 300 }) });
});
