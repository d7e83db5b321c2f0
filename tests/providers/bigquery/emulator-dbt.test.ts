/**
 * The BigQuery emulator running what a dbt-bigquery-style materializer submits, through the
 * real @google-cloud/bigquery client (one emulator for the file): CREATE SCHEMA seen by the
 * REST API, CREATE OR REPLACE TABLE with every PARTITION BY form, CLUSTER BY and OPTIONS, views,
 * dbt's MERGE statements, INSERT … SELECT, DELETE … IN, atomic transaction scripts, ALTER TABLE
 * ADD COLUMN, and dbt's test queries — asserting the rows they leave.
 */
import { BigQuery, type Job } from '@google-cloud/bigquery';
import { PassThroughClient } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../../providers/bigquery/emulator/server.ts';

let emu: Emulator;
let bq: BigQuery;

type QueryStats = { statementType: string; numDmlAffectedRows?: string; dmlStats?: Record<string, string>; ddlTargetTable?: unknown; ddlTargetDataset?: unknown };
type Status = { state: string; errorResult?: { reason: string; location?: string; message: string } };

/** Run one query job to DONE; its statistics and status. */
async function run(query: string): Promise<{ job: Job; stats: QueryStats; status: Status }> {
  const [job] = await bq.createQueryJob({ query });
  await job.getQueryResults().catch(() => {});
  const [meta] = await job.getMetadata();
  return { job, stats: meta.statistics.query, status: meta.status };
}

const rows = async (query: string) => (await bq.query(query))[0];

beforeAll(async () => {
  emu = await startEmulator({ jobDurationMs: 0 });
  bq = new BigQuery({ projectId: 'proj', apiEndpoint: emu.url, authClient: new PassThroughClient() as never, autoRetry: false });
  await bq.query('create schema if not exists `proj`.`dbt`');
  await bq.query(`create or replace table \`proj\`.\`dbt\`.\`events\` as
    select i as id, if(mod(i, 2) = 0, 'paid', 'open') as status, date_add(date '2024-01-30', interval i day) as day,
      timestamp_add(timestamp '2024-01-30 12:00:00', interval i day) as seen_at, i * 10 as amount
    from unnest(generate_array(1, 6)) as i`);
});
afterAll(async () => {
  await emu?.close();
});

describe('dbt DDL', () => {
  it('create schema if not exists makes a dataset the REST API has, with its OPTIONS(location)', async () => {
    const { stats } = await run('create schema if not exists `proj`.`dbt_eu` OPTIONS(location="EU", labels=[(\'team\', \'data\')])');
    expect(stats).toMatchObject({ statementType: 'CREATE_SCHEMA', ddlTargetDataset: { projectId: 'proj', datasetId: 'dbt_eu' } });
    const [meta] = await bq.dataset('dbt_eu').getMetadata();
    expect(meta).toMatchObject({ datasetReference: { datasetId: 'dbt_eu' }, location: 'EU', labels: { team: 'data' } });
    expect((await bq.getDatasets())[0].map((d) => d.id)).toContain('dbt_eu');
    expect((await run('create schema if not exists `proj`.`dbt_eu`')).status.errorResult).toBeUndefined();
    expect((await run('create schema `proj`.`dbt_eu`')).status.errorResult?.message).toMatch(/dbt_eu.*already exists/i);
    await run('create table `proj.dbt_eu.t` as select 1 as x');
    expect((await bq.dataset('dbt_eu').getTables())[0].map((t) => t.id)).toEqual(['t']);
    await run('drop schema `proj`.`dbt_eu` cascade');
    expect((await bq.dataset('dbt_eu').exists())[0]).toBe(false);
  });

  it('create or replace table … partition by (every form) cluster by … OPTIONS(…) as ( select … )', async () => {
    const partitions = ['day', 'date(seen_at)', 'date_trunc(day, month)', 'timestamp_trunc(seen_at, day)', 'range_bucket(id, generate_array(0, 100, 10))'];
    for (const [i, partition] of partitions.entries()) {
      const { stats, status } = await run(`create or replace table \`proj\`.\`dbt\`.\`part_${i}\`
        partition by ${partition}
        cluster by status, id
        OPTIONS(labels=[('team', 'data'), ('tier', 'gold')], description="""Paid events; "quoted", (with parens) and a ; semicolon""")
        as (
          select id, status, day, seen_at from \`proj\`.\`dbt\`.\`events\` where status = 'paid'
        );`);
      expect(status.errorResult).toBeUndefined();
      expect(stats).toMatchObject({ statementType: 'CREATE_TABLE_AS_SELECT', ddlTargetTable: { datasetId: 'dbt', tableId: `part_${i}` } });
      expect((await rows(`select id from \`proj.dbt.part_${i}\` order by id`)).map((r) => r.id)).toEqual([2, 4, 6]);
    }
    const [meta] = await bq.dataset('dbt').table('part_0').getMetadata();
    expect(meta.schema.fields).toEqual([
      { name: 'id', type: 'INTEGER', mode: 'NULLABLE' }, { name: 'status', type: 'STRING', mode: 'NULLABLE' },
      { name: 'day', type: 'DATE', mode: 'NULLABLE' }, { name: 'seen_at', type: 'TIMESTAMP', mode: 'NULLABLE' },
    ]);
    expect(meta.numRows).toBe('3');
  });

  it('create table with columns, BigQuery types, NOT NULL, column OPTIONS, partitioning and table constraints', async () => {
    await run(`create table \`proj.dbt.typed\` (id INT64 NOT NULL OPTIONS(description="key"), tags ARRAY<STRING>, price NUMERIC(10, 2), seen TIMESTAMP, meta STRUCT<k STRING, n INT64>, primary key (id) not enforced)
      partition by date(seen) cluster by id OPTIONS(description='typed')`);
    const [meta] = await bq.dataset('dbt').table('typed').getMetadata();
    expect(meta.schema.fields.map((f: { name: string; type: string; mode: string }) => [f.name, f.type, f.mode])).toEqual([
      ['id', 'INTEGER', 'REQUIRED'], ['tags', 'STRING', 'REPEATED'], ['price', 'NUMERIC', 'NULLABLE'], ['seen', 'TIMESTAMP', 'NULLABLE'], ['meta', 'RECORD', 'NULLABLE'],
    ]);
    expect(meta.schema.fields[4].fields.map((f: { name: string; type: string }) => `${f.name}:${f.type}`)).toEqual(['k:STRING', 'n:INTEGER']);
  });

  it('create or replace table with a column list (a dbt contract) as ( select … ), atomically', async () => {
    const { stats } = await run(`create or replace table \`proj\`.\`dbt\`.\`contracted\` (id INT64 not null, status STRING)
      partition by range_bucket(id, generate_array(0, 10, 1)) OPTIONS() as ( select id, status from \`proj\`.\`dbt\`.\`events\` where id < 3 )`);
    expect(stats).toMatchObject({ statementType: 'CREATE_TABLE_AS_SELECT', ddlTargetTable: { tableId: 'contracted' } });
    expect(await rows('select id, status from `proj.dbt.contracted` order by id')).toEqual([{ id: 1, status: 'open' }, { id: 2, status: 'paid' }]);
    const broken = await run('create or replace table `proj`.`dbt`.`contracted` (id INT64 not null, status STRING) as ( select null as id, \'x\' as status )');
    expect(broken.status.errorResult?.message).toMatch(/NOT NULL/i);
    expect(await rows('select count(*) as n from `proj.dbt.contracted`')).toEqual([{ n: 2 }]);
  });

  it('create or replace view … OPTIONS(description="""…""") as select …', async () => {
    const { stats } = await run('create or replace view `proj`.`dbt`.`open_events` OPTIONS(description="""Open "events" only""") as select id, status from `proj`.`dbt`.`events` where status = \'open\';');
    expect(stats).toMatchObject({ statementType: 'CREATE_VIEW', ddlTargetTable: { tableId: 'open_events' } });
    expect(await rows('select id from `proj.dbt.open_events` order by id')).toEqual([{ id: 1 }, { id: 3 }, { id: 5 }]);
    await run('create or replace view `proj`.`dbt`.`open_events` OPTIONS(description="""v2""") as select id from `proj`.`dbt`.`events` where id = 1');
    expect(await rows('select * from `proj.dbt.open_events`')).toEqual([{ id: 1 }]);
    expect((await bq.dataset('dbt').table('open_events').getMetadata())[0].type).toBe('VIEW');
  });

  it('alter table add column [if not exists], one or several', async () => {
    await run('create or replace table `proj.dbt.wide` as select 1 as id');
    await run('alter table `proj`.`dbt`.`wide` add column if not exists `note` STRING;');
    const again = await run('alter table `proj`.`dbt`.`wide` add column if not exists `note` STRING');
    expect(again.status.errorResult).toBeUndefined();
    expect(again.stats).toMatchObject({ statementType: 'ALTER_TABLE', ddlTargetTable: { tableId: 'wide' } });
    await run('alter table `proj`.`dbt`.`wide` add column qty INT64, add column tags ARRAY<STRING>');
    await run('alter table `proj.dbt.wide` set OPTIONS(description="wide")');
    const [meta] = await bq.dataset('dbt').table('wide').getMetadata();
    expect(meta.schema.fields.map((f: { name: string; type: string; mode: string }) => `${f.name}:${f.type}:${f.mode}`)).toEqual(['id:INTEGER:NULLABLE', 'note:STRING:NULLABLE', 'qty:INTEGER:NULLABLE', 'tags:STRING:REPEATED']);
    expect((await run('alter table `proj`.`dbt`.`wide` add column `note` STRING')).status.errorResult?.message).toMatch(/note/);
    // FLOAT and RECORD are REST schema names; BigQuery's SQL refuses them too.
    expect((await run('alter table `proj`.`dbt`.`wide` add column ratio FLOAT')).status.errorResult).toEqual({ reason: 'invalidQuery', location: 'query', message: 'Type not found: FLOAT' });
  });
});

describe('dbt DML', () => {
  it('merge (incremental, unique key): unqualified backtick columns, insert values naming source columns', async () => {
    await run('create or replace table `proj.dbt.orders` as select id, k, a, b from unnest([struct(1 as id, \'x\' as k, \'a1\' as a, 1 as b), struct(2, \'y\', \'a2\', 2)])');
    const { stats } = await run(`merge into \`proj\`.\`dbt\`.\`orders\` as DBT_INTERNAL_DEST
      using ( select 1 as id, 'x' as k, 'A1' as a, 10 as b union all select 2, 'zz', 'a9', 9 union all select 3, 'z', 'a3', 3 ) as DBT_INTERNAL_SOURCE
      on ((DBT_INTERNAL_SOURCE.id = DBT_INTERNAL_DEST.id) and (DBT_INTERNAL_SOURCE.k = DBT_INTERNAL_DEST.k))
      when matched then update set \`a\` = DBT_INTERNAL_SOURCE.\`a\`, \`b\` = DBT_INTERNAL_SOURCE.\`b\`
      when not matched then insert (\`id\`, \`k\`, \`a\`, \`b\`) values (\`id\`, \`k\`, \`a\`, \`b\`)`);
    expect(stats).toMatchObject({ statementType: 'MERGE', numDmlAffectedRows: '3', dmlStats: { insertedRowCount: '2', updatedRowCount: '1', deletedRowCount: '0' } });
    expect(await rows('select id, k, a, b from `proj.dbt.orders` order by id, k')).toEqual([
      { id: 1, k: 'x', a: 'A1', b: 10 }, { id: 2, k: 'y', a: 'a2', b: 2 }, { id: 2, k: 'zz', a: 'a9', b: 9 }, { id: 3, k: 'z', a: 'a3', b: 3 },
    ]);
  });

  it('merge on FALSE (insert_overwrite): not matched by source and <cond> then delete, not matched then insert', async () => {
    await run('create or replace table `proj.dbt.daily` partition by day as select day, id from `proj.dbt.events`');
    const { stats } = await run(`merge into \`proj\`.\`dbt\`.\`daily\` as DBT_INTERNAL_DEST
      using ( select date '2024-02-01' as day, 100 as id union all select date '2024-02-02', 200 ) as DBT_INTERNAL_SOURCE
      on FALSE
      when not matched by source and DBT_INTERNAL_DEST.day in (date '2024-02-01', date '2024-02-02') then delete
      when not matched then insert (\`day\`, \`id\`) values (\`day\`, \`id\`)`);
    expect(stats).toMatchObject({ statementType: 'MERGE', numDmlAffectedRows: '4', dmlStats: { insertedRowCount: '2', deletedRowCount: '2', updatedRowCount: '0' } });
    expect((await rows('select id from `proj.dbt.daily` order by day, id')).map((r) => r.id)).toEqual([1, 100, 200, 4, 5, 6]);
  });

  it('insert into (`a`, `b`) select from ( … ), and delete where date(col) in (select distinct date(col) from ( … ))', async () => {
    await run('create or replace table `proj.dbt.facts` (id INT64, seen_at TIMESTAMP)');
    const insert = await run("insert into `proj`.`dbt`.`facts` (`id`, `seen_at`) select `id`, `seen_at` from ( select id, seen_at from `proj`.`dbt`.`events` where id <= 4 );");
    expect(insert.stats).toMatchObject({ statementType: 'INSERT', numDmlAffectedRows: '4', dmlStats: { insertedRowCount: '4' } });
    const del = await run(`delete from \`proj\`.\`dbt\`.\`facts\` where date(seen_at) in (select distinct date(seen_at) from ( select timestamp '2024-02-01 23:59:00' as seen_at union all select timestamp('2024-02-02') ));`);
    expect(del.stats).toMatchObject({ statementType: 'DELETE', numDmlAffectedRows: '2', dmlStats: { deletedRowCount: '2' } });
    expect((await rows('select id from `proj.dbt.facts` order by id')).map((r) => r.id)).toEqual([1, 4]);
  });
});

describe('scripts', () => {
  it('begin transaction; delete; insert; commit transaction; is a SCRIPT job with the DML counts summed', async () => {
    await run('create or replace table `proj.dbt.snap` as select id, status from `proj.dbt.events`');
    const { job, stats } = await run(`begin transaction;
      delete from \`proj\`.\`dbt\`.\`snap\` where status = 'open';
      insert into \`proj\`.\`dbt\`.\`snap\` (\`id\`, \`status\`) select id, 'closed' from ( select 7 as id );
      commit transaction;`);
    expect(stats).toMatchObject({ statementType: 'SCRIPT', numDmlAffectedRows: '4', dmlStats: { deletedRowCount: '3', insertedRowCount: '1', updatedRowCount: '0' } });
    expect((await job.getQueryResults())[0]).toEqual([]);
    expect((await rows('select id from `proj.dbt.snap` order by id')).map((r) => r.id)).toEqual([2, 4, 6, 7]);
  });

  it('a failing statement rolls the transaction back and fails the job with BigQuery\'s errorResult, placed in the script', async () => {
    const { status } = await run(`begin transaction;
delete from \`proj\`.\`dbt\`.\`snap\` where true;
insert into \`proj\`.\`dbt\`.\`snap\` (id, status) select id, status from \`proj\`.\`dbt\`.\`no_such_table\`;
commit transaction;`);
    expect(status.state).toBe('DONE');
    expect(status.errorResult).toEqual({ reason: 'notFound', location: 'query', message: expect.stringMatching(/^Not found: .*no_such_table.* at \[3:1\]$/) });
    expect((await rows('select count(*) as n from `proj.dbt.snap`'))[0].n).toBe(4);
    // The connection that ran it is reused by later jobs, outside any transaction.
    for (let i = 0; i < 3; i++) expect((await run('delete from `proj.dbt.snap` where id = 99')).status.errorResult).toBeUndefined();
  });

  it('a script that ends inside its transaction is rolled back; statements outside a transaction stay', async () => {
    await run("begin transaction; delete from `proj.dbt.snap` where true");
    expect((await rows('select count(*) as n from `proj.dbt.snap`'))[0].n).toBe(4);
    const { status } = await run("insert into `proj.dbt.snap` (id, status) values (8, 'kept'); select 1 / 0 as boom from `proj.dbt.nope`");
    expect(status.errorResult?.message).toMatch(/at \[1:\d+\]$/);
    expect((await rows('select status from `proj.dbt.snap` where id = 8'))).toEqual([{ status: 'kept' }]);
  });

  it('a script\'s temporary table lives as long as the script', async () => {
    const { job } = await run('create temp table staged as select 1 as id; insert into staged values (2); select sum(id) as total from staged');
    expect((await job.getQueryResults())[0]).toEqual([{ total: 3 }]);
    for (let i = 0; i < 3; i++) expect((await run('select * from staged')).status.errorResult?.reason).toBe('notFound');
  });

  it('refuses procedural scripting by name', async () => {
    const { status } = await run('declare n int64 default 1; select n');
    expect(status.errorResult).toMatchObject({ reason: 'invalidQuery', message: expect.stringMatching(/Unsupported by the emulator: .*procedural scripting \(DECLARE\)/) });
    expect((await run('begin select 1; end')).status.errorResult?.message).toMatch(/BEGIN … END blocks/);
  });
});

describe('dbt tests', () => {
  it('not_null and accepted_values queries count failures', async () => {
    await run("insert into `proj.dbt.snap` (id, status) values (null, 'open'), (9, 'weird')");
    const notNull = await rows('select count(*) as failures, count(*) != 0 as should_warn, count(*) != 0 as should_error from ( select id from `proj`.`dbt`.`snap` where id is null ) dbt_internal_test');
    expect(notNull).toEqual([{ failures: 1, should_warn: true, should_error: true }]);
    const accepted = await rows(`with all_values as (select status as value_field, count(*) as n_records from \`proj\`.\`dbt\`.\`snap\` group by status)
      select * from all_values where value_field not in ('paid','closed','kept','open') order by value_field`);
    expect(accepted).toEqual([{ value_field: 'weird', n_records: 1 }]);
  });
});
