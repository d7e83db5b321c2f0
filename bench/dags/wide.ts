/** Benchmark DAG: 5,000 independent no-op async tasks (measures throughput). */
import { dag, task } from 'updraft';

const noop = task('t', async () => null);

export default dag({ dagId: 'bench_wide', schedule: null, maxActiveTasks: 5000 }, () => {
  for (let i = 0; i < 5000; i++) noop();
});
