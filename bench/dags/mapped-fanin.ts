/**
 * Benchmark DAG for the fanout bench: like bench_mapped_noop, but each mapped TI returns its
 * item and a fan-in task `collect` receives all 10,000 results. Measures mapped-TI throughput
 * when every finished batch must also decide a downstream task (which waits until the last).
 */
import { z } from 'zod';
import { dag, task } from 'updraft';

const makeList = task('make_list', async (_: void, ctx) => Array.from({ length: Number(ctx.params.count) }, (_, i) => i));

const echo = task('echo', async ({ item }: { item: number }) => item);

const collect = task('collect', async ({ values }: { values: number[] }) => values.length);

export default dag({
  dagId: 'bench_mapped_fanin', schedule: null, maxActiveTasks: 10_000,
  params: z.object({ count: z.number().int().positive().default(10_000) }),
}, () => {
  collect({ values: echo.expand({ item: makeList() }) });
});
