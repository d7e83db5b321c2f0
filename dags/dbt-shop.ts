/**
 * A dbt project run natively: `dags/dbt/shop` (seeds, sources, staging views, an ephemeral
 * model, an incremental model merged on its key, a table, macros, vars and tests) compiled once
 * per run, every model a deferrable BigQuery job. A second DAG runs whenever the shop's final
 * table gets a new version (data-aware scheduling on its dataset).
 *
 * `npm start` points `example_bigquery` at Updraft's BigQuery emulator. Trigger a run with
 * `{"dbt_vars": {"inject_bad_order": true}}` to load an order with no id and watch its test fail.
 */
import { fileURLToPath } from 'node:url';
import { dag, dataset, task } from 'updraft';
import { BigQueryHook, BigQueryInsertJobOperator } from 'updraft/providers/bigquery';
import { dbtTaskGroup } from 'updraft/providers/dbt';

const CONN = 'example_bigquery';

export const shop = dag({ dagId: 'dbt_shop', schedule: '@daily', startDate: '2026-01-01T00:00:00Z', tags: ['example', 'dbt'], defaultArgs: { retries: 1, retryDelay: '10s' } }, () => {
  const land = new BigQueryInsertJobOperator({ taskId: 'land', connId: CONN, deferrable: true, configuration: { query: { query: 'dbt/land_shop.sql' } } });
  land.then(dbtTaskGroup({ projectDir: fileURLToPath(new URL('dbt/shop', import.meta.url)), connId: CONN }));
});

const topCustomers = task('top_customers', async (_: void, ctx) => {
  const bq = await BigQueryHook.create(ctx, CONN);
  const rows = await bq.query('select name, total_amount from `shop_marts.customer_orders` order by total_amount desc limit 3');
  ctx.log.info('top customers: %j', rows);
  return rows;
});

export const shopReport = dag({ dagId: 'dbt_shop_report', schedule: [dataset('bigquery://example/shop_marts/customer_orders')], startDate: '2026-01-01T00:00:00Z', tags: ['example', 'dbt'] }, () => {
  topCustomers();
});
