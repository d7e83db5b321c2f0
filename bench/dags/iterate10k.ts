/**
 * Benchmark DAG for the fanout bench: 10,000 items, each a 1 s wait on the event loop, all in
 * ONE `iterate()` TI at concurrency 10,000. The ideal TI duration is 1 s.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { dag, task } from 'updraft';

const createItems = task('create_items', async () => Array.from({ length: 10_000 }, (_, i) => i));

const wait = task('wait_1s', async ({ item }: { item: number }) => {
  await sleep(1000);
  return item;
});

export default dag({ dagId: 'bench_iterate10k', schedule: null }, () => {
  wait.iterate({ item: createItems() }, { concurrency: 10_000 });
});
