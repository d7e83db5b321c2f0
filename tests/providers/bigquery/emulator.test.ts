/**
 * Updraft's BigQuery emulator through the real @google-cloud/bigquery client (one emulator for
 * the file): the job lifecycle, errors kept on jobs.get, cancel, paging of results and job
 * listings, MERGE, identifiers in backticks, load jobs from uploaded files (explicit job ids,
 * autodetected or given schemas, write dispositions), insertAll, dry runs and injected faults.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BigQuery } from '@google-cloud/bigquery';
import { PassThroughClient } from 'google-auth-library';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../../providers/bigquery/emulator/server.ts';

let emu: Emulator;
let bq: BigQuery;
let noRetry: BigQuery;
let dir: string;

const client = (autoRetry: boolean) => new BigQuery({ projectId: 'proj', apiEndpoint: emu.url, authClient: new PassThroughClient() as never, autoRetry, maxRetries: 3 });
const stats = async () => (await (await fetch(`${emu.url}/emulator/stats`)).json()) as { requests: Record<string, number> };
const fault = (f: Record<string, unknown>) => fetch(`${emu.url}/emulator/faults`, { method: 'POST', body: JSON.stringify(f) });
const state = async (jobId: string) => (await bq.job(jobId).getMetadata())[0].status;
async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, what: string): Promise<T> {
  for (const deadline = Date.now() + 30_000; ;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  emu = await startEmulator({ jobDurationMs: 0 });
  bq = client(true);
  noRetry = client(false);
  dir = mkdtempSync(path.join(os.tmpdir(), 'updraft-bq-emu-'));
  await bq.createDataset('shop');
  await bq.query('create table `proj.shop.orders` as select i as id, concat(\'order-\', i) as name, i * 1.5 as amount from range(1, 251) t(i)');
});
afterAll(async () => {
  await emu?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('BigQuery emulator through the real client', () => {
  it('moves a job PENDING → RUNNING → DONE, taking the duration its label asks for', async () => {
    const started = Date.now();
    const [job] = await bq.createQueryJob({ query: 'select count(*) as n from `proj.shop.orders`', jobId: 'lifecycle', labels: { 'emulator-duration-ms': '400' } });
    expect((job.metadata as { status: { state: string } }).status.state).toBe('PENDING');
    await until(() => state('lifecycle'), (s) => s.state === 'RUNNING', 'RUNNING');
    await until(() => state('lifecycle'), (s) => s.state === 'DONE', 'DONE');
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    const [rows] = await job.getQueryResults();
    expect(rows).toEqual([{ n: 250 }]);
    const [meta] = await job.getMetadata();
    expect(meta.statistics.query.statementType).toBe('SELECT');
    expect(meta.configuration.labels).toEqual({ 'emulator-duration-ms': '400' });
  });

  it('keeps a failed job\'s errorResult on every jobs.get, and refuses a second job with the same id (409)', async () => {
    await bq.createQueryJob({ query: 'select * from `proj.shop.missing`', jobId: 'broken' });
    const status = await until(() => state('broken'), (s) => s.state === 'DONE', 'DONE');
    expect(status.errorResult).toMatchObject({ reason: 'notFound', message: expect.stringMatching(/missing/) });
    expect((await state('broken')).errors).toHaveLength(1);
    await expect(noRetry.createQueryJob({ query: 'select 1', jobId: 'broken' })).rejects.toMatchObject({ code: 409 });
  });

  it('cancel stops a running job: DONE with a stopped error', async () => {
    const [job] = await bq.createQueryJob({ query: 'select 1', jobId: 'to-cancel', labels: { 'emulator-duration-ms': '60000' } });
    await until(() => state('to-cancel'), (s) => s.state === 'RUNNING', 'RUNNING');
    await job.cancel();
    const status = await until(() => state('to-cancel'), (s) => s.state === 'DONE', 'DONE');
    expect(status.errorResult).toMatchObject({ reason: 'stopped' });
  });

  it('pages query results and job listings', async () => {
    const [job] = await bq.createQueryJob({ query: 'select id from `proj.shop.orders` order by id' });
    const [first, next] = await job.getQueryResults({ autoPaginate: false, maxResults: 100 });
    expect(first).toHaveLength(100);
    const [second] = await job.getQueryResults({ autoPaginate: false, maxResults: 100, pageToken: (next as { pageToken: string }).pageToken });
    expect(second.map((r) => r.id)).toEqual(Array.from({ length: 100 }, (_, i) => i + 101));
    const [all] = await job.getQueryResults();
    expect(all).toHaveLength(250);
    for (let i = 0; i < 5; i++) await bq.createQueryJob({ query: 'select 1', jobId: `listed-${i}` });
    await until(() => state('listed-4'), (s) => s.state === 'DONE', 'DONE');
    const [page1, nextJobs] = await bq.getJobs({ autoPaginate: false, maxResults: 3, stateFilter: 'done' as never, projection: 'minimal' });
    expect(page1).toHaveLength(3);
    expect(page1[0].id).toBe('listed-4');
    expect(nextJobs).toMatchObject({ pageToken: '3' });
    const [recent] = await bq.getJobs({ minCreationTime: String(Date.now() + 60_000) });
    expect(recent).toEqual([]);
  });

  it('runs MERGE, DML counts and query parameters', async () => {
    await bq.query('create table `proj.shop.stock` (sku string, qty int64)');
    await bq.query("insert into `proj.shop.stock` values ('a', 1), ('b', 2)");
    const [job] = await bq.createQueryJob({ query: "merge `proj`.`shop`.`stock` t using (select 'b' as sku, 5 as qty union all select 'c', 7) s on t.sku = s.sku when matched then update set qty = s.qty when not matched then insert (sku, qty) values (s.sku, s.qty)" });
    await job.getQueryResults();
    const [meta] = await job.getMetadata();
    expect(meta.statistics.query).toMatchObject({ statementType: 'MERGE', numDmlAffectedRows: '2', ddlTargetTable: { datasetId: 'shop', tableId: 'stock' } });
    const [rows] = await bq.query({ query: 'select sku, qty from `shop.stock` where qty >= @min order by sku', params: { min: 2 } });
    expect(rows).toEqual([{ sku: 'b', qty: 5 }, { sku: 'c', qty: 7 }]);
  });

  it('loads CSV and newline-delimited JSON, inserts rows and lists them', async () => {
    const csv = path.join(dir, 'people.csv');
    writeFileSync(csv, 'name,age\nada,36\ngrace,45\n');
    const table = bq.dataset('shop').table('people');
    const [load] = await table.load(csv, { sourceFormat: 'CSV', skipLeadingRows: 1, autodetect: true });
    expect(load.status?.state).toBe('DONE');
    expect(load.statistics?.load?.outputRows).toBe('2');
    await table.insert([{ name: 'alan', age: 41 }]);
    const [rows] = await table.getRows();
    expect(rows.map((r) => r.name).sort()).toEqual(['ada', 'alan', 'grace']);
    const json = path.join(dir, 'events.json');
    writeFileSync(json, '{"kind":"click","n":1}\n{"kind":"view","n":2}\n');
    const [loadJson] = await bq.dataset('shop').table('events').load(json, { sourceFormat: 'NEWLINE_DELIMITED_JSON', autodetect: true });
    expect(loadJson.statistics?.load?.outputRows).toBe('2');
    const [meta] = await bq.dataset('shop').table('events').getMetadata();
    expect(meta.schema.fields.map((f: { name: string }) => f.name)).toEqual(['kind', 'n']);
    expect(meta.numRows).toBe('2');
  });

  it('createLoadJob from a local CSV: the explicit job id, autodetected types, WRITE_TRUNCATE; the same id again answers 409', async () => {
    const csv = path.join(dir, 'payments.csv');
    writeFileSync(csv, 'id,name,amount,paid,day,paid_at\n1,ada,1.5,true,2024-01-02,2024-01-02 10:00:00\n2,grace,2.25,false,2024-01-03,2024-01-03 11:30:00\n');
    const table = bq.dataset('shop').table('payments');
    await bq.query('create table `proj.shop.payments` as select \'stale\' as old_column');
    const [job] = await table.createLoadJob(csv, { sourceFormat: 'CSV', skipLeadingRows: 1, writeDisposition: 'WRITE_TRUNCATE', autodetect: true, jobId: 'explicit_id', location: 'EU' });
    expect(job.id).toBe('explicit_id');
    await job.promise();
    const [meta] = await job.getMetadata();
    expect(meta).toMatchObject({ jobReference: { jobId: 'explicit_id', location: 'EU' }, status: { state: 'DONE' }, statistics: { load: { outputRows: '2' } } });
    const [info] = await table.getMetadata();
    expect(info.schema.fields.map((f: { name: string; type: string }) => `${f.name}:${f.type}`)).toEqual(['id:INTEGER', 'name:STRING', 'amount:FLOAT', 'paid:BOOLEAN', 'day:DATE', 'paid_at:TIMESTAMP']);
    const [rows] = await bq.query('select id, name, amount, paid, cast(day as string) as day, unix_seconds(paid_at) as paid_at from `proj.shop.payments` order by id');
    expect(rows).toEqual([
      { id: 1, name: 'ada', amount: 1.5, paid: true, day: '2024-01-02', paid_at: Date.UTC(2024, 0, 2, 10) / 1000 },
      { id: 2, name: 'grace', amount: 2.25, paid: false, day: '2024-01-03', paid_at: Date.UTC(2024, 0, 3, 11, 30) / 1000 },
    ]);
    await expect(table.createLoadJob(csv, { sourceFormat: 'CSV', skipLeadingRows: 1, autodetect: true, jobId: 'explicit_id' })).rejects.toMatchObject({ code: 409 });
    expect((await bq.query('select count(*) as n from `proj.shop.payments`'))[0]).toEqual([{ n: 2 }]);
  });

  it('createLoadJob with an explicit schema replaces the table\'s schema; appends use the table\'s; no schema at all fails as BigQuery does', async () => {
    const csv = path.join(dir, 'codes.csv');
    writeFileSync(csv, 'code,qty\n007,3\n042,4\n');
    const table = bq.dataset('shop').table('codes');
    const schema = { fields: [{ name: 'code', type: 'STRING', mode: 'REQUIRED' }, { name: 'qty', type: 'INT64' }] };
    const [job] = await table.createLoadJob(csv, { sourceFormat: 'CSV', skipLeadingRows: 1, writeDisposition: 'WRITE_TRUNCATE', schema, jobId: 'codes_1' });
    await job.promise();
    const [append] = await table.createLoadJob(csv, { sourceFormat: 'CSV', skipLeadingRows: 1, jobId: 'codes_2' });
    await append.promise();
    const [info] = await table.getMetadata();
    expect(info.schema.fields).toEqual([{ name: 'code', type: 'STRING', mode: 'REQUIRED' }, { name: 'qty', type: 'INTEGER', mode: 'NULLABLE' }]);
    expect((await bq.query('select code, sum(qty) as qty from `proj.shop.codes` group by code order by code'))[0]).toEqual([{ code: '007', qty: 6 }, { code: '042', qty: 8 }]);
    const [bare] = await bq.dataset('shop').table('schemaless').createLoadJob(csv, { sourceFormat: 'CSV', skipLeadingRows: 1, jobId: 'schemaless' });
    await expect(bare.promise()).rejects.toMatchObject({ message: 'No schema specified on job or table.' });
    expect((await bq.dataset('shop').table('schemaless').exists())[0]).toBe(false);
  });

  it('answers a dry run without running it, and a bad one with a 400', async () => {
    const before = (await stats()).requests['jobs.insert'] ?? 0;
    const [dry] = await bq.createQueryJob({ query: 'delete from `proj.shop.orders` where true', dryRun: true });
    expect((dry.metadata as { status: { state: string } }).status.state).toBe('DONE');
    expect((await bq.query('select count(*) as n from `shop.orders`'))[0]).toEqual([{ n: 250 }]);
    await expect(noRetry.createQueryJob({ query: 'select * from `shop.nope`', dryRun: true })).rejects.toMatchObject({ code: 400 });
    expect((await stats()).requests['jobs.insert']).toBeGreaterThan(before);
  });

  it('serves injected faults: a 503 burst that the client retries, counted per request', async () => {
    const [job] = await bq.createQueryJob({ query: 'select 1 as one', jobId: 'faulty' });
    await until(() => state('faulty'), (s) => s.state === 'DONE', 'DONE');
    await fetch(`${emu.url}/emulator/reset`, { method: 'POST' });
    await fault({ route: 'jobs.get', status: 503, count: 2 });
    expect((await job.getMetadata())[0].status.state).toBe('DONE');
    expect((await stats()).requests['jobs.get']).toBe(3);
    await fault({ route: 'jobs.get', status: 503, count: 1 });
    await expect(noRetry.job('faulty').getMetadata()).rejects.toMatchObject({ code: 503 });
  });
});
