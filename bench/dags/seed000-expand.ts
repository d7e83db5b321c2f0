/**
 * Benchmark DAG for the fanout bench: seed 000's fan-out/fan-in at 300 items with dynamic task
 * mapping. `create_items` returns 300 items, `process_item` is expanded over them (one TI per
 * item, each waiting 3 s on the event loop), and `collect` receives every result. With enough
 * worker slots and pool slots the ideal run is 3 s plus scheduling overhead.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { dag, task } from 'updraft';

const createItems = task('create_items', async () => Array.from({ length: 300 }, (_, i) => `item_${i}`));

const processItem = task('process_item', async ({ item }: { item: string }) => {
  await sleep(3000);
  return item.toUpperCase();
});

const collect = task('collect', async ({ results }: { results: string[] }) => results.length);

export default dag({ dagId: 'bench_seed000_expand', schedule: null, maxActiveTasks: 1000 }, () => {
  collect({ results: processItem.expand({ item: createItems() }) });
});
