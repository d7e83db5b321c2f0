/**
 * Benchmark DAG for the fanout bench: `make_list` returns `count` numbers (default 10,000, the
 * default UPDRAFT_MAX_MAP_LENGTH) and a no-op async task is expanded over them, one mapped TI
 * per item (measures mapped-TI throughput). A small `count` makes a quick warm-up run.
 */
import { z } from 'zod';
import { dag, task } from 'updraft';

const makeList = task('make_list', async (_: void, ctx) => Array.from({ length: Number(ctx.params.count) }, (_, i) => i));

const noop = task('noop', async (_: { item: number }) => {});

export default dag({
  dagId: 'bench_mapped_noop', schedule: null, maxActiveTasks: 10_000,
  params: z.object({ count: z.number().int().positive().default(10_000) }),
}, () => {
  noop.expand({ item: makeList() });
});
