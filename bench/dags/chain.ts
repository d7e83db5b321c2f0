/**
 * Benchmark DAG: 200 no-op async tasks in one chain (measures hand-off latency). Each task
 * returns the moment it started running, so the bench measures upstream end → downstream
 * start from the tasks' own clocks, not from database timestamps.
 */
import { dag, task, chain } from 'updraft';

const noop = task('step', async () => Date.now());

export default dag({ dagId: 'bench_chain', schedule: null }, () => {
  chain(...Array.from({ length: 200 }, () => noop()));
});
