/** Benchmark DAG: 10,000 calls to one task (parse time; kept out of bench/dags so services never load it). */
import { dag, task } from 'updraft';

const noop = task('t', async () => null);

export default dag({ dagId: 'bench_import_10k', schedule: null }, () => {
  for (let i = 0; i < 10_000; i++) noop();
});
