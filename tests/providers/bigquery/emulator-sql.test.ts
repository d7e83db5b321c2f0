/**
 * BigQuery SQL in the emulator, through the real @google-cloud/bigquery client (one emulator
 * for the file): the functions dbt's SQL uses in BigQuery's dialect and argument order, their
 * result values and types, constructs the emulator refuses by name, and dry runs that answer
 * the real result schema without running anything.
 */
import { BigQuery } from '@google-cloud/bigquery';
import { PassThroughClient } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../../providers/bigquery/emulator/server.ts';
import { classify, splitStatements, translate } from '../../../providers/bigquery/emulator/sql.ts';

let emu: Emulator;
let bq: BigQuery;

const one = async (query: string, params?: Record<string, unknown>) => (await bq.query({ query, params }))[0][0] as Record<string, unknown>;
/** A value as the client returns it: BigQueryDate, BigQueryTimestamp and Big by their text. */
const text = (v: unknown) => (v && typeof v === 'object' && 'value' in v ? String((v as { value: unknown }).value) : String(v));
const failure = async (query: string) => {
  const [job] = await bq.createQueryJob({ query });
  await job.getQueryResults().catch(() => {});
  return (await job.getMetadata())[0].status.errorResult as { reason: string; message: string };
};

beforeAll(async () => {
  emu = await startEmulator({ jobDurationMs: 0 });
  bq = new BigQuery({ projectId: 'proj', apiEndpoint: emu.url, authClient: new PassThroughClient() as never, autoRetry: false });
  await bq.createDataset('shop');
  await bq.query(`create table \`proj.shop.sales\` as
    select i as id, concat('sku-', cast(i as string)) as sku, i * 2.5 as price, cast(i * 3 as numeric) as cost, mod(i, 2) = 0 as even,
      date_add(date '2024-03-01', interval i day) as day, timestamp_add(timestamp '2024-03-01 08:00:00', interval i hour) as sold_at
    from unnest(generate_array(1, 4)) as i`);
});
afterAll(async () => {
  await emu?.close();
});

describe('translation', () => {
  it('names tables by dataset and table whatever the backtick form, and keeps strings and comments intact', () => {
    expect(translate('select * from `p.d.t`')).toBe('select * from "d"."t"');
    expect(translate('select * from `p`.`d`.`t` join `d.u` using (id)')).toBe('select * from "d"."t" join "d"."u" using (id)');
    expect(translate('select `t`.a from `my-proj.ds.t` as t')).toBe('select "t"."a" from "ds"."t" as t');
    expect(translate('merge `p.d.t` t using s on true when matched then delete')).toBe('merge INTO "d"."t" t using s on true when matched then delete');
    expect(translate('delete `d.t` where true')).toBe('delete FROM "d"."t" where true');
    expect(translate("select '`p.d.t`' as s, \"it's\" as q -- `p.d.x`\n")).toBe("select '`p.d.t`' as s, 'it''s' as q  \n");
    expect(translate("select r'a\\nb' as raw, 'a\\nb' as esc")).toBe("select 'a\\nb' as raw, 'a\nb' as esc");
    expect(translate('select * from ds.t where a = @min')).toBe('select * from ds.t where a = $min');
    expect(translate('create schema if not exists `p`.`d` OPTIONS(location="US")')).toBe('create schema if not exists "d"');
  });

  it('drops OPTIONS, PARTITION BY and CLUSTER BY from DDL, rewrites BigQuery functions, and refuses what it cannot run by name', () => {
    expect(translate('create or replace table `p.d.t` partition by date_trunc(d, month) cluster by id options(description="""a (b) "c" """) as (select 1 as id)'))
      .toBe('create or replace table "d"."t" as (select 1 as id)');
    expect(translate('alter table `p.d.t` add column x INT64, add column y ARRAY<STRING>')).toBe('alter table "d"."t" add column x BIGINT;\nalter table "d"."t" add column y VARCHAR[]');
    expect(translate('select date_trunc(d, month), safe_cast(x as int64), 1.5')).toBe('select time_bucket(INTERVAL 1 MONTH, d), TRY_CAST(x AS BIGINT), CAST(1.5 AS DOUBLE)');
    expect(() => translate('create temp function f(x int64) as (x + 1)')).toThrow(/CREATE FUNCTION/);
    expect(() => translate('select * from `p.d.t` for system_time as of current_timestamp')).toThrow(/FOR SYSTEM_TIME/);
    expect(() => translate('select x from unnest([1]) as x with offset')).toThrow(/WITH OFFSET/);
    expect(() => translate('merge `d.t` t using `d.s` s on false when not matched then insert row')).toThrow(/INSERT ROW/);
  });

  it('splits scripts and classifies statements as BigQuery names them', () => {
    expect(splitStatements("insert into `d.t` values (';'); select 1;")).toEqual(["insert into `d.t` values (';')", 'select 1']);
    expect(classify('create or replace table `p.d.t` partition by day as select 1')).toEqual({ type: 'CREATE_TABLE_AS_SELECT', target: ['d', 't'] });
    expect(classify('merge `p`.`d`.`t` t using s on t.id = s.id when matched then delete')).toEqual({ type: 'MERGE', target: ['d', 't'] });
    expect(classify('create schema if not exists `p`.`d`')).toEqual({ type: 'CREATE_SCHEMA', dataset: 'd' });
    expect(classify('with x as (select 1) select * from x')).toEqual({ type: 'SELECT' });
  });
});

describe('BigQuery functions', () => {
  it('dates and times in BigQuery\'s argument order, types and week rules', async () => {
    const r = await one(`select
      date_trunc(date '2024-03-15', month) as month_start, date_trunc(date '2024-03-15', week) as sunday,
      date_trunc(date '2024-03-15', week(monday)) as monday, date_trunc(date '2024-05-15', quarter) as quarter,
      timestamp_trunc(timestamp '2024-03-15 10:30:00', day) as day_start, timestamp_trunc(timestamp '2024-03-15 10:30:00', hour) as hour_start,
      timestamp('2024-01-01') as ts, date('2024-01-01') as d, date(timestamp '2024-01-01 23:30:00') as from_ts,
      format_date('%Y-%m', date '2024-03-15') as ym, format_date('%F', date '2024-03-15') as iso, format_timestamp('%Y-%m-%d %H:%M', timestamp '2024-03-15 10:30:00') as stamp,
      date_add(date '2024-01-31', interval 1 month) as next_month, date_sub(date '2024-03-01', interval 1 day) as prev_day,
      date_diff(date '2024-03-10', date '2024-03-09', week) as weeks, date_diff(date '2024-03-10', date '2024-03-01', day) as days,
      timestamp_diff(timestamp '2024-01-02 00:00:00', timestamp '2024-01-01 12:30:00', hour) as hours,
      extract(dayofweek from date '2024-03-10') as dow, extract(year from date '2024-03-10') as year,
      parse_date('%Y%m%d', '20240315') as parsed, current_timestamp() >= timestamp '2024-01-01' as now_ok, current_date() >= date '2024-01-01' as today_ok`);
    expect(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, text(v)]))).toEqual({
      month_start: '2024-03-01', sunday: '2024-03-10', monday: '2024-03-11', quarter: '2024-04-01',
      day_start: '2024-03-15T00:00:00.000Z', hour_start: '2024-03-15T10:00:00.000Z',
      ts: '2024-01-01T00:00:00.000Z', d: '2024-01-01', from_ts: '2024-01-01',
      ym: '2024-03', iso: '2024-03-15', stamp: '2024-03-15 10:30',
      next_month: '2024-02-29', prev_day: '2024-02-29', weeks: '1', days: '9', hours: '11', dow: '1', year: '2024',
      parsed: '2024-03-15', now_ok: 'true', today_ok: 'true',
    });
  });

  it('casts, NULL handling, strings, structs and arrays', async () => {
    const r = await one(`select safe_cast('x' as int64) as bad, safe_cast('42' as int64) as good, cast(1.5 as string) as s, cast(7 as string) as s7,
      cast('2.50' as numeric) as n, coalesce(null, 'b') as c, ifnull(null, 3) as i, concat('a', null) as c_null, concat('a', 'b', 'c') as abc,
      greatest(1, null) as g_null, greatest(1, 5) as g, safe_divide(1, 0) as div0, regexp_contains('abc', r'b.') as re,
      regexp_extract('order-42', r'order-(\\d+)') as num, regexp_extract('x', r'y') as none, to_hex(md5('a')) as md5,
      struct(1 as a, 'x' as b) as st, [1, 2, 3] as arr, [struct(1 as k, ['p', 'q'] as tags)] as nested, 1.5 as f`);
    expect(r).toMatchObject({
      bad: null, good: 42, s: '1.5', s7: '7', c: 'b', i: 3, c_null: null, abc: 'abc', g_null: null, g: 5, div0: null, re: true,
      num: '42', none: null, md5: '0cc175b9c0f1b6a831c399e269772661', st: { a: 1, b: 'x' }, arr: [1, 2, 3], nested: [{ k: 1, tags: ['p', 'q'] }], f: 1.5,
    });
    expect(text(r.n)).toBe('2.5');
  });

  it('aggregates: countif, array_agg (ignore nulls, order by, limit), struct arrays, and select * except', async () => {
    const r = await one(`select countif(x > 1) as n, array_agg(x ignore nulls order by x desc limit 2) as top, array_agg(x order by x) as all_x,
      array_agg(struct(x as v, 'k' as k) ignore nulls order by x limit 1) as first, string_agg(cast(x as string), ',' order by x) as csv,
      logical_or(x > 2) as any_big from unnest([1, null, 3, 2]) as x`);
    expect(r).toEqual({ n: 2, top: [3, 2], all_x: [null, 1, 2, 3], first: [{ v: null, k: 'k' }], csv: '1,2,3', any_big: true });
    expect(await bq.query('select * except (price, cost, day, sold_at) from `proj.shop.sales` where id = 2').then(([rows]) => rows)).toEqual([{ id: 2, sku: 'sku-2', even: true }]);
    const [top] = await bq.query('select id from `proj.shop.sales` where true qualify row_number() over (order by price desc) = 1');
    expect(top).toEqual([{ id: 4 }]);
  });

  it('unsupported functions and constructs fail the job with a message naming them', async () => {
    expect(await failure('select farm_fingerprint(sku) from `proj.shop.sales`')).toMatchObject({ reason: 'invalidQuery', message: expect.stringMatching(/^Function not found: farm_fingerprint/) });
    expect(await failure('select date_trunc(day, isoyear) from `proj.shop.sales`')).toMatchObject({ reason: 'invalidQuery', message: expect.stringMatching(/Unsupported by the emulator: DATE_TRUNC to ISOYEAR/) });
    expect(await failure('select as struct 1 as a')).toMatchObject({ message: expect.stringMatching(/SELECT AS STRUCT/) });
    expect(await failure('select @@project_id')).toMatchObject({ message: expect.stringMatching(/system variables/) });
  });
});

describe('dry runs', () => {
  it('answer the result schema of a query without running it, with BigQuery\'s REST type names', async () => {
    const [job] = await bq.createQueryJob({
      query: `select id, sku, price, cost, even, day, sold_at, cast(sold_at as datetime) as local, b'x' as raw, struct(id, sku) as item,
        [sku] as skus, count(*) over () as n, avg(price) over () as mean from \`proj.shop.sales\``,
      dryRun: true,
    });
    const meta = job.metadata as { status: { state: string }; statistics: { query: { statementType: string; schema: { fields: unknown[] }; totalBytesProcessed: string } } };
    expect(meta.status.state).toBe('DONE');
    expect(meta.statistics.query.statementType).toBe('SELECT');
    expect(meta.statistics.query.totalBytesProcessed).toBe('0');
    expect(meta.statistics.query.schema.fields).toEqual([
      { name: 'id', type: 'INTEGER', mode: 'NULLABLE' }, { name: 'sku', type: 'STRING', mode: 'NULLABLE' },
      { name: 'price', type: 'FLOAT', mode: 'NULLABLE' }, { name: 'cost', type: 'NUMERIC', mode: 'NULLABLE' },
      { name: 'even', type: 'BOOLEAN', mode: 'NULLABLE' }, { name: 'day', type: 'DATE', mode: 'NULLABLE' },
      { name: 'sold_at', type: 'TIMESTAMP', mode: 'NULLABLE' }, { name: 'local', type: 'DATETIME', mode: 'NULLABLE' },
      { name: 'raw', type: 'BYTES', mode: 'NULLABLE' },
      { name: 'item', type: 'RECORD', mode: 'NULLABLE', fields: [{ name: 'id', type: 'INTEGER', mode: 'NULLABLE' }, { name: 'sku', type: 'STRING', mode: 'NULLABLE' }] },
      { name: 'skus', type: 'STRING', mode: 'REPEATED' }, { name: 'n', type: 'INTEGER', mode: 'NULLABLE' }, { name: 'mean', type: 'FLOAT', mode: 'NULLABLE' },
    ]);
    expect((await emu.stats).get('jobs.insert')).toBeGreaterThan(0);
  });

  it('types query parameters, and answers DML, DDL and scripts with their statement type and no schema', async () => {
    const [withParams] = await bq.createQueryJob({ query: 'select @n + 1 as m, @s as s, @day as d from `proj.shop.sales`', params: { n: 1, s: 'x', day: bq.date('2024-01-01') }, dryRun: true });
    expect((withParams.metadata as { statistics: { query: { schema: { fields: unknown[] } } } }).statistics.query.schema.fields).toEqual([
      { name: 'm', type: 'INTEGER', mode: 'NULLABLE' }, { name: 's', type: 'STRING', mode: 'NULLABLE' }, { name: 'd', type: 'DATE', mode: 'NULLABLE' },
    ]);
    const dry = async (query: string) => ((await bq.createQueryJob({ query, dryRun: true }))[0].metadata as { statistics: { query: { statementType: string; schema?: unknown } } }).statistics.query;
    const del = await dry('delete from `proj.shop.sales` where id = 1');
    expect(del.statementType).toBe('DELETE');
    expect(del.schema).toBeUndefined();
    expect(await dry('create or replace table `proj.shop.copy` partition by day as select * from `proj.shop.sales`')).toMatchObject({ statementType: 'CREATE_TABLE_AS_SELECT' });
    expect(await dry('create table `proj.shop.tmp` as select 1 as x; insert into `proj.shop.tmp` values (2); select * from `proj.shop.tmp`')).toMatchObject({ statementType: 'SCRIPT' });
    expect((await bq.query('select count(*) as n from `proj.shop.sales`'))[0]).toEqual([{ n: 4 }]);
    expect((await bq.dataset('shop').table('copy').exists())[0]).toBe(false);
    await expect(bq.createQueryJob({ query: 'select * from `proj.shop.nope`', dryRun: true })).rejects.toMatchObject({ code: 400, message: expect.stringMatching(/nope/) });
    await expect(bq.createQueryJob({ query: 'select @missing as m', dryRun: true })).rejects.toMatchObject({ code: 400, message: "Query parameter 'missing' not found" });
    await expect(bq.createQueryJob({ query: 'select farm_fingerprint(sku) from `proj.shop.sales`', dryRun: true })).rejects.toMatchObject({ code: 400, message: expect.stringMatching(/Function not found: farm_fingerprint/) });
  });
});
