/**
 * The example shop project run for real: scheduler, worker and triggerer in-process on an
 * in-memory database, every job on Updraft's BigQuery emulator through the real client (one
 * emulator for the file). Asserts the rows of every table, the incremental merge, a full
 * refresh, failures of a model and of a test, selection, and the SQL the tasks show.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { openDatabase, queries, schema, DagBag, type Database } from '../../../core/index.ts';
import { BigQueryHook, resolveBigQueryTarget, startEmulator, type Emulator } from '../../../providers/bigquery/index.ts';
import { runDagLocally, type LocalRunResult } from '../../../cli/local-run.ts';
import { createDatasetTriggeredRuns } from '../../../scheduler/dataset-runs.ts';

let emu: Emulator;
let bag: DagBag;
let database: Database;
let hook: BigQueryHook;
const EXTRA = { project: 'proj', location: 'US' };

beforeAll(async () => {
  emu = await startEmulator({ jobDurationMs: 50 });
  const extra = { ...EXTRA, api_endpoint: emu.url };
  process.env.UPDRAFT_CONN_TEST_DBT = JSON.stringify({ conn_type: 'google_cloud_platform', extra });
  hook = new BigQueryHook(resolveBigQueryTarget({ connId: 'test_dbt', connType: 'google_cloud_platform', extra } as never));
  bag = await DagBag.load('tests/fixtures/dbt');
  expect([...bag.errors]).toEqual([]);
});
afterAll(async () => {
  delete process.env.UPDRAFT_CONN_TEST_DBT;
  await emu?.close();
});
beforeEach(async () => {
  await fetch(`${emu.url}/emulator/reset`, { method: 'POST' });
  database = await openDatabase({ dataDir: 'memory://' });
  await database.migrate();
});
afterEach(async () => { await database?.close(); });

const rows = (q: string) => hook.query(q);
const states = (r: LocalRunResult) => Object.fromEntries(r.taskInstances.map((t) => [t.taskId, t.state]));
const xcom = async (r: LocalRunResult, taskId: string, key = 'return_value') => {
  const [run] = await queries.dagRuns.getRun(database.db, r.runId);
  return queries.xcom.readXCom(database.db, run.id, taskId, key, -1);
};
const ORDERS = 'select order_id, customer_id, status, amount, paid, cast(updated_at as string) as updated_at from `shop_marts.orders` order by order_id';

describe('the shop project on the emulator', () => {
  it('a full run builds every table with the expected rows', async () => {
    const r = await runDagLocally(database, bag, bag.get('dbt_full'), {});
    expect(r.taskInstances.filter((t) => t.state !== 'success')).toEqual([]);
    expect(Object.values(states(r)).every((s) => s === 'success')).toBe(true);
    expect(await rows('select customer_id, name, country, cast(signed_up_on as string) as signed_up_on from `shop_raw.raw_customers` order by customer_id')).toEqual([
      { customer_id: 1, name: 'Ada Moss', country: 'gb', signed_up_on: '2025-11-02' },
      { customer_id: 2, name: 'Bo Lindqvist', country: 'se', signed_up_on: '2025-12-14' },
      { customer_id: 3, name: 'Chidi Okafor', country: 'ng', signed_up_on: '2026-01-20' },
      { customer_id: 4, name: 'Dana Kohl', country: 'de', signed_up_on: '2026-02-03' },
    ]);
    expect(await rows('select status, is_final from `shop_raw.order_statuses` order by status')).toEqual([
      { status: 'completed', is_final: true }, { status: 'placed', is_final: false }, { status: 'returned', is_final: true }, { status: 'shipped', is_final: false },
    ]);
    expect(await rows('select customer_id, country from `shop_staging.stg_customers` order by customer_id')).toEqual([
      { customer_id: 1, country: 'GB' }, { customer_id: 2, country: 'SE' }, { customer_id: 3, country: 'NG' }, { customer_id: 4, country: 'DE' },
    ]);
    expect(await rows('select payment_id, order_id, method, amount from `shop_staging.stg_payments` order by payment_id')).toEqual([
      { payment_id: 1, order_id: 101, method: 'card', amount: 25 }, { payment_id: 2, order_id: 102, method: 'card', amount: 10 },
      { payment_id: 3, order_id: 102, method: 'voucher', amount: 2.5 }, { payment_id: 4, order_id: 104, method: 'bank_transfer', amount: 9.99 },
    ]);
    expect(await rows(ORDERS)).toEqual([
      { order_id: 101, customer_id: 1, status: 'completed', amount: 25, paid: 25, updated_at: '2026-01-05 10:00:00+00' },
      { order_id: 102, customer_id: 1, status: 'shipped', amount: 12.5, paid: 12.5, updated_at: '2026-01-06 09:30:00+00' },
      { order_id: 103, customer_id: 2, status: 'placed', amount: 40, paid: 0, updated_at: '2026-01-07 16:45:00+00' },
      { order_id: 104, customer_id: 3, status: 'returned', amount: 9.99, paid: 9.99, updated_at: '2026-01-08 12:00:00+00' },
    ]);
    expect(await rows('select * from `shop_marts.customer_orders` order by customer_id')).toEqual([
      { customer_id: 1, name: 'Ada Moss', country: 'GB', orders: 2, placed_orders: 0, shipped_orders: 1, completed_orders: 1, returned_orders: 0, total_amount: 37.5, total_paid: 37.5 },
      { customer_id: 2, name: 'Bo Lindqvist', country: 'SE', orders: 1, placed_orders: 1, shipped_orders: 0, completed_orders: 0, returned_orders: 0, total_amount: 40, total_paid: 0 },
      { customer_id: 3, name: 'Chidi Okafor', country: 'NG', orders: 1, placed_orders: 0, shipped_orders: 0, completed_orders: 0, returned_orders: 1, total_amount: 9.99, total_paid: 9.99 },
      { customer_id: 4, name: 'Dana Kohl', country: 'DE', orders: 0, placed_orders: 0, shipped_orders: 0, completed_orders: 0, returned_orders: 0, total_amount: 0, total_paid: 0 },
    ]);
    // No table for the ephemeral model: it was inlined.
    expect(await hook.tableExists('shop_intermediate', 'order_payments')).toBe(false);
    // The summary goes into the model task's return value; labels name the model and project.
    const summary = await xcom(r, 'shop.marts.customer_orders') as { statementType: string; relation: string; jobId: string };
    expect(summary).toMatchObject({ statementType: 'CREATE_TABLE_AS_SELECT', relation: 'proj.shop_marts.customer_orders' });
    const job = await hook.getJob(summary.jobId);
    expect(job.configuration?.labels).toMatchObject({ 'dbt-model': 'customer_orders', 'dbt-project': 'shop', 'updraft-task': 'shop_marts_customer_orders' });
    // The rendered SQL is the task's templated field.
    const ti = r.taskInstances.find((t) => t.taskId === 'shop.marts.orders')!;
    const [stored] = await database.db.select().from(schema.renderedFields).where(eq(schema.renderedFields.tiId, ti.id));
    expect((stored.fields as { configuration: { query: { query: string } } }).configuration.query.query).toMatch(/^create or replace table `proj`\.`shop_marts`\.`orders`\nOPTIONS\(labels=\[\('team', 'analytics'\)\]\)\nas \(\nwith __dbt__cte__order_payments as \(/);
  });

  it('a second run merges the incremental model: changed rows updated, new rows appended; a full refresh rebuilds it', async () => {
    expect((await runDagLocally(database, bag, bag.get('dbt_full'), {})).state).toBe('success');
    // The application changes order 103 and adds 105; a row of the table is changed by hand so a rebuild shows.
    await rows("update `shop_landing.orders` set status = 'completed', updated_at = timestamp('2026-02-01 00:00:00') where order_id = 103");
    await rows("insert into `shop_landing`.`orders` values (105, 4, 'placed', 700, timestamp('2026-02-02 00:00:00'))");
    await rows('update `shop_marts.orders` set paid = -1 where order_id = 101');
    const r3 = await runDagLocally(database, bag, bag.get('dbt_rerun'), {});
    expect(r3.state).toBe('success');
    const compiled = await xcom(r3, 'shop.compile', 'model.shop.orders') as string;
    expect(compiled).toMatch(/^merge into `proj`\.`shop_marts`\.`orders` as DBT_INTERNAL_DEST/);
    expect(await rows(ORDERS)).toEqual([
      { order_id: 101, customer_id: 1, status: 'completed', amount: 25, paid: -1, updated_at: '2026-01-05 10:00:00+00' },
      { order_id: 102, customer_id: 1, status: 'shipped', amount: 12.5, paid: 12.5, updated_at: '2026-01-06 09:30:00+00' },
      { order_id: 103, customer_id: 2, status: 'completed', amount: 40, paid: 0, updated_at: '2026-02-01 00:00:00+00' },
      { order_id: 104, customer_id: 3, status: 'returned', amount: 9.99, paid: 9.99, updated_at: '2026-01-08 12:00:00+00' },
      { order_id: 105, customer_id: 4, status: 'placed', amount: 7, paid: 0, updated_at: '2026-02-02 00:00:00+00' },
    ]);
    // A full refresh rebuilds from the source: order 101's row is recomputed.
    const r4 = await runDagLocally(database, bag, bag.get('dbt_rerun'), { full_refresh: true });
    expect(r4.state).toBe('success');
    expect(await xcom(r4, 'shop.compile', 'model.shop.orders')).toMatch(/^create or replace table `proj`\.`shop_marts`\.`orders`/);
    expect((await rows(ORDERS))[0]).toMatchObject({ order_id: 101, paid: 25 });
  });

  it('a failing model fails its task and its downstream models become upstream_failed', async () => {
    const r = await runDagLocally(database, bag, bag.get('dbt_full'), { dbt_vars: { currency_divisor: '0/' } });
    expect(r.state).toBe('failed');
    const s = states(r);
    expect(s).toMatchObject({ 'shop.staging.stg_orders': 'failed', 'shop.staging.stg_payments': 'failed', 'shop.staging.stg_customers': 'success', 'shop.marts.orders': 'upstream_failed', 'shop.marts.customer_orders': 'upstream_failed' });
    expect(r.taskInstances.find((t) => t.taskId === 'shop.staging.stg_orders')!.error).toMatch(/^BigQueryJobError: BigQuery job updraft_dbt_full_shop_staging_stg_orders_\S+ failed: invalidQuery at query: Parser Error: syntax error/);
  });

  it('a failing test fails its test task (rows counted and shown) and stops what reads the model', async () => {
    const r = await runDagLocally(database, bag, bag.get('dbt_full'), { dbt_vars: { inject_bad_order: true } });
    expect(r.state).toBe('failed');
    const s = states(r);
    expect(s).toMatchObject({ 'shop.staging.stg_orders': 'success', 'shop.staging.not_null_stg_orders_order_id': 'failed', 'shop.staging.unique_stg_orders_order_id': 'success', 'shop.marts.orders': 'upstream_failed' });
    expect(r.taskInstances.find((t) => t.taskId === 'shop.staging.not_null_stg_orders_order_id')!.error)
      .toBe('DbtTestFailure: dbt test not_null_stg_orders_order_id failed: 1 row returned; first rows: [{"order_id":null}]');
  });

  it('selection and exclusion build only the chosen nodes', async () => {
    const r = await runDagLocally(database, bag, bag.get('dbt_selected'), {});
    expect(r.state).toBe('success');
    expect(Object.keys(states(r)).sort()).toEqual(['shop.compile', 'shop.not_null_stg_customers_customer_id', 'shop.raw_customers', 'shop.stg_customers', 'shop.unique_stg_customers_customer_id']);
    // The server saw jobs for the chosen nodes only.
    const { jobs } = await hook.listJobs({ projection: 'full', maxResults: 1000 });
    const mine = jobs.filter((j) => j.jobReference.jobId.startsWith('updraft_dbt_selected_'));
    const named = (j: (typeof jobs)[number]) => j.configuration?.labels?.['dbt-model'] ?? j.configuration?.labels?.['dbt-test']
      ?? (j.configuration?.load as { destinationTable?: { tableId: string } } | undefined)?.destinationTable?.tableId;
    expect(mine.map(named).sort())
      .toEqual(['not_null_stg_customers_customer_id', 'raw_customers', 'stg_customers', 'unique_stg_customers_customer_id']);
  });

  it('awaited on the worker instead of deferred, with tests after all models', async () => {
    const r = await runDagLocally(database, bag, bag.get('dbt_awaited'), {});
    expect(r.state).toBe('success');
    expect(states(r)['shop.tests.not_null_orders_order_id']).toBe('success');
    expect(r.taskInstances.every((t) => t.tryNumber === 1)).toBe(true);
    expect((await rows('select count(*) as n from `shop_marts.customer_orders`'))[0]).toEqual({ n: 4 });
  });

  it('every model and seed emits its table\'s dataset; the DAG scheduled on the final one runs once', async () => {
    const r = await runDagLocally(database, bag, bag.get('dbt_full'), {});
    expect(r.state).toBe('success');
    const uris = (await queries.datasets.listDatasets(database.db)).filter((d) => d.events > 0).map((d) => d.uri).sort();
    expect(uris).toEqual([
      'bigquery://proj/shop_marts/customer_orders', 'bigquery://proj/shop_marts/orders', 'bigquery://proj/shop_raw/order_statuses', 'bigquery://proj/shop_raw/raw_customers',
      'bigquery://proj/shop_staging/stg_customers', 'bigquery://proj/shop_staging/stg_orders', 'bigquery://proj/shop_staging/stg_payments',
    ]);
    const events = await queries.datasets.eventsOfDataset(database.db, 'bigquery://proj/shop_marts/customer_orders');
    expect(events).toHaveLength(1);
    expect(events![0]).toMatchObject({ sourceDagId: 'dbt_full', sourceTaskId: 'shop.marts.customer_orders', extra: { statementType: 'CREATE_TABLE_AS_SELECT' } });
    expect(await createDatasetTriggeredRuns(database, bag.dags.values())).toBe(1);
    expect(await createDatasetTriggeredRuns(database, bag.dags.values())).toBe(0);
    const runs = await database.db.select().from(schema.dagRuns).where(eq(schema.dagRuns.dagId, 'dbt_downstream'));
    expect(runs.map((x) => x.runType)).toEqual(['dataset_triggered']);
    expect((await queries.datasets.eventsOfRun(database.db, runs[0].id)).map((e) => e.uri)).toEqual(['bigquery://proj/shop_marts/customer_orders']);
  });
});
