/**
 * on_schema_change for incremental models against the emulator (through the real client): the
 * model task's dry run finds the new columns; `fail` names them, `append_new_columns` adds them
 * and merges them in the same script.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection, Context } from '../../../core/index.ts';
import { BigQueryHook, resolveBigQueryTarget, startEmulator, type Emulator } from '../../../providers/bigquery/index.ts';
import { checkSchemaChange } from '../../../providers/dbt/schema-change.ts';
import { finishConfig } from '../../../providers/dbt/config.ts';
import type { CompiledMeta, DbtNode } from '../../../providers/dbt/index.ts';

let emu: Emulator;
let conn: Connection;
let hook: BigQueryHook;
const logs: string[] = [];

beforeAll(async () => {
  emu = await startEmulator({ jobDurationMs: 0 });
  conn = { connId: 'bq', connType: 'google_cloud_platform', description: null, host: null, schema: null, login: null, password: null, port: null, extra: { project: 'proj', location: 'US', api_endpoint: emu.url } } as Connection;
  hook = new BigQueryHook(resolveBigQueryTarget(conn));
  await hook.ensureDataset('marts');
  await hook.query('create table `proj.marts.orders` as select 1 as order_id, 10.5 as amount');
});
afterAll(async () => { await emu?.close(); });

const ctx = { connection: async () => conn, log: { info: (m: string, ...a: unknown[]) => logs.push([m, ...a].join(' ')), warn() {}, error() {}, debug() {} } } as unknown as Context;
const node = (onSchemaChange: string): DbtNode => ({
  uniqueId: 'model.shop.orders', kind: 'model', name: 'orders', path: 'models/orders.sql', folders: [], raw: '', refs: [], sources: [], dependsOn: [],
  config: finishConfig({ materialized: 'incremental', unique_key: 'order_id', on_schema_change: onSchemaChange }, 'view'),
});
const meta = (onSchemaChange: string): CompiledMeta => ({
  relation: { project: 'proj', dataset: 'marts', table: 'orders' }, materialized: 'incremental', strategy: 'merge', onSchemaChange,
  select: "select 2 as order_id, 20.0 as amount, 'web' as channel, 0.5 as score, [1, 2] as tags", existingColumns: ['order_id', 'amount'], preHooks: [], postHooks: [],
});

describe('on_schema_change', () => {
  it('ignore keeps the compiled script', async () => {
    expect(await checkSchemaChange(ctx, 'bq', node('ignore'), meta('ignore'))).toBeNull();
  });

  it('fail names the new columns', async () => {
    await expect(checkSchemaChange(ctx, 'bq', node('fail'), meta('fail'))).rejects.toThrow(
      'models/orders.sql: the model\'s columns changed (new: channel STRING, score FLOAT64, tags ARRAY<INT64>) and on_schema_change is "fail"; run a full refresh, or set on_schema_change to append_new_columns');
  });

  it('append_new_columns adds them and merges them, in one script the emulator runs', async () => {
    const script = (await checkSchemaChange(ctx, 'bq', node('append_new_columns'), meta('append_new_columns')))!;
    expect(script).toMatch(/^alter table `proj`\.`marts`\.`orders` add column if not exists `channel` STRING, add column if not exists `score` FLOAT64, add column if not exists `tags` ARRAY<INT64>;\nmerge into `proj`\.`marts`\.`orders` as DBT_INTERNAL_DEST/);
    expect(script).toContain('when not matched then insert\n  (`order_id`, `amount`, `channel`, `score`, `tags`)');
    await hook.query(script);
    expect(await hook.query('select order_id, amount, channel, score, tags from `proj.marts.orders` order by order_id')).toEqual([
      { order_id: 1, amount: 10.5, channel: null, score: null, tags: [] },
      { order_id: 2, amount: 20, channel: 'web', score: 0.5, tags: [1, 2] },
    ]);
  });
});
