/**
 * A BigQuery job from a DAG: make sure the dataset exists, then a deferrable insert job builds a
 * daily summary table from a `.sql` template (waiting in the triggerer, holding no worker
 * slot), then a task reads the result. `npm start` points the `example_bigquery` connection at
 * Updraft's BigQuery emulator, which `standalone` starts because the connection asks for it
 * (`start_emulator: true`); point the connection at a real project to run it there.
 */
import { dag, task } from 'updraft';
import { BigQueryHook, BigQueryInsertJobOperator } from 'updraft/providers/bigquery';

const CONN = 'example_bigquery';

const ensureDataset = task('ensure_dataset', async (_: void, ctx) => {
  const bq = await BigQueryHook.create(ctx, CONN);
  const [exists] = await bq.client.dataset('example').exists();
  if (!exists) await bq.client.createDataset('example');
  return exists ? 'dataset example exists' : 'created dataset example';
});

const readSummary = task('read_summary', async (_: void, ctx) => {
  const bq = await BigQueryHook.create(ctx, CONN);
  const rows = await bq.query<{ day: string; events: number }>('select day, events from `example.daily_summary`');
  ctx.log.info('summary: %j', rows);
  return rows;
});

export default dag({ dagId: 'bigquery_report', schedule: '@daily', startDate: '2026-01-01T00:00:00Z', tags: ['example', 'bigquery'] }, () => {
  const build = new BigQueryInsertJobOperator({
    taskId: 'build_summary', connId: CONN, deferrable: true,
    configuration: { query: { query: 'sql/daily_summary.sql' } },
    labels: { 'emulator-duration-ms': '2000' },
  });
  ensureDataset().then(build);
  build.then(readSummary());
});
