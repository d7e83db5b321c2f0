/**
 * `updraft datasets list|events`, as a user runs them against an embedded database that a
 * scheduler has filled: the fixture DAGs synced, events written, and the runs they triggered.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DagBag, openDatabase, queries } from '../../core/index.ts';
import { createDatasetTriggeredRuns } from '../../scheduler/dataset-runs.ts';
import { runCli, type CliResult } from '../helpers/cli.ts';
import { DATASET_FIXTURES } from '../helpers/datasets.ts';

const ORDERS = 's3://warehouse/orders';
const CUSTOMERS = 's3://warehouse/customers';
const REPORT = 'file:///reports/daily.csv';

let dataDir: string;
let emptyDir: string;
const updraft = (args: string[], dir = dataDir): Promise<CliResult> => runCli(args, { UPDRAFT_DATA_DIR: dir, UPDRAFT_DAGS_FOLDER: DATASET_FIXTURES });
const lines = (text: string) => text.split('\n').filter((l) => l.length > 0);

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'updraft-datasets-cli-'));
  emptyDir = mkdtempSync(path.join(os.tmpdir(), 'updraft-datasets-cli-empty-'));
  const database = await openDatabase({ dataDir: path.join(dataDir, 'db') });
  try {
    await database.migrate();
    const bag = await DagBag.load(DATASET_FIXTURES);
    await database.db.transaction((tx) => queries.dags.syncDagBag(tx, bag.dags.values(), bag.errors));
    const event = (uri: string, taskId: string, extra: Record<string, unknown> = {}) => ({
      uri, extra, dagId: 'ds_produce', runId: 'manual__2024-01-01T00:00:00.000Z', taskId, mapIndex: -1, timestamp: new Date('2024-01-01T00:10:00Z'),
    });
    await queries.datasets.writeDatasetEvents(database.db, [event(ORDERS, 'orders'), event(CUSTOMERS, 'customers', { rows: 3 })]);
    await createDatasetTriggeredRuns(database, bag.dags.values());
    await queries.datasets.writeDatasetEvents(database.db, [{ ...event(ORDERS, 'each', { late: true }), mapIndex: 2 }]);
  } finally {
    await database.close();
  }
});

afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(emptyDir, { recursive: true, force: true });
});

describe('updraft datasets', () => {
  it('lists datasets with their producers, consumers and last event, as JSON', async () => {
    const r = await updraft(['datasets', 'list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as { uri: string; producingTasks: string[]; consumingDags: string[]; events: number; lastEvent: unknown }[];
    expect(rows.map((d) => d.uri)).toEqual([REPORT, CUSTOMERS, ORDERS]);
    expect(rows.find((d) => d.uri === ORDERS)).toEqual({
      uri: ORDERS,
      producingTasks: ['ds_failing.bad_extra', 'ds_failing.fails', 'ds_failing.flaky', 'ds_produce.each', 'ds_produce.orders'],
      consumingDags: ['ds_all', 'ds_any', 'ds_nested'],
      events: 2,
      lastEvent: { timestamp: '2024-01-01T00:10:00.000Z', source: 'ds_produce.each' },
    });
    expect(rows.find((d) => d.uri === REPORT)).toMatchObject({ consumingDags: ['ds_nested'], events: 0, lastEvent: null });
  });

  it('lists datasets as a table', async () => {
    const r = await updraft(['datasets', 'list']);
    expect(r.code, r.stderr).toBe(0);
    const out = lines(r.stdout);
    expect(out[0]).toMatch(/^uri +producers +consumers +events +lastEvent$/);
    expect(out.find((l) => l.startsWith(CUSTOMERS))).toMatch(/ds_produce\.customers +ds_all, ds_any, ds_nested +1 +2024-01-01T00:10:00\.000Z by ds_produce\.customers$/);
  });

  it('shows a dataset schedule in `dags list`', async () => {
    const r = await updraft(['dags', 'list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const schedules = Object.fromEntries((JSON.parse(r.stdout) as { dags: { dagId: string; schedule: string | null }[] }).dags.map((d) => [d.dagId, d.schedule]));
    expect(schedules).toMatchObject({
      ds_all: `datasets: all(${ORDERS}, ${CUSTOMERS})`, ds_nested: `datasets: any(all(${ORDERS}, ${CUSTOMERS}), ${REPORT})`, ds_produce: null,
    });
  });

  it('says so when there are no datasets yet', async () => {
    const r = await updraft(['datasets', 'list'], emptyDir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('no datasets yet; they appear once a DAG that names one is synced by a scheduler\n');
  });

  it('shows a dataset\'s events, newest first, with the runs they triggered', async () => {
    const r = await updraft(['datasets', 'events', ORDERS, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const events = JSON.parse(r.stdout) as { sourceTaskId: string; sourceMapIndex: number; extra: unknown; triggeredRuns: string[] }[];
    expect(events.map((e) => [e.sourceTaskId, e.sourceMapIndex, e.extra])).toEqual([['each', 2, { late: true }], ['orders', -1, {}]]);
    expect(events[0].triggeredRuns).toEqual([]);
    // The first orders event triggered ds_any at once and ds_all and ds_nested with the customers one.
    expect(events[1].triggeredRuns.map((run) => run.replace(/__.*/, ''))).toEqual(['ds_all/dataset_triggered', 'ds_any/dataset_triggered', 'ds_nested/dataset_triggered']);

    const text = await updraft(['datasets', 'events', CUSTOMERS]);
    expect(text.code, text.stderr).toBe(0);
    expect(lines(text.stdout)[0]).toMatch(/^id +timestamp +source +extra +triggered$/);
    expect(lines(text.stdout)[2]).toMatch(/ds_produce\.customers \(manual__2024-01-01T00:00:00\.000Z\) +\{"rows":3\} +ds_all\/dataset_triggered__/);
  });

  it('refuses an unknown dataset and a malformed URI with one line each', async () => {
    let r = await updraft(['datasets', 'events', 's3://warehouse/nothing']);
    expect([r.code, r.stderr]).toEqual([1, 'updraft: no dataset "s3://warehouse/nothing" is known; run `updraft datasets list` to see the datasets\n']);
    r = await updraft(['datasets', 'events', 'orders.csv']);
    expect([r.code, r.stderr]).toEqual([1, 'updraft: invalid dataset URI "orders.csv": it has no scheme (such as "s3:" or "file:"); '
      + 'use a URI with a scheme and no whitespace, such as "s3://bucket/orders.parquet" or "file:///data/orders.csv"\n']);
    r = await updraft(['datasets', 'events']);
    expect([r.code, r.stderr]).toEqual([1, 'updraft: missing <uri>; run `updraft --help`\n']);
  });
});
