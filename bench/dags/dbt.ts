/**
 * The dbt bench's DAG: the generated project in BENCH_DBT_DIR (see bench/dbt.ts), every model a
 * deferrable BigQuery job. Nothing is defined when the variable is unset (other benches).
 */
import { dbtDag } from 'updraft/providers/dbt';

const dir = process.env.BENCH_DBT_DIR;

export const bench = dir
  ? dbtDag({ dagId: 'bench_dbt', schedule: null, maxActiveTasks: 10_000 }, { projectDir: dir, connId: 'bench_bq', testBehavior: 'none' })
  : undefined;
