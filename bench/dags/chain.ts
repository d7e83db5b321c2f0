/** Benchmark DAG: 200 no-op async tasks in one chain (measures hand-off latency). */
import { dag, task, chain } from 'updraft';

const noop = task('step', async () => null);

export default dag({ dagId: 'bench_chain', schedule: null }, () => {
  chain(...Array.from({ length: 200 }, () => noop()));
});
