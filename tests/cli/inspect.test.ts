/**
 * `dags test --json`, `dags show`, `dags pause|unpause`, `tasks states-for-dag-run` and
 * `xcom get|list`, run as a user runs them against an embedded database holding one finished run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DagBag, openDatabase, queries } from '../../core/index.ts';
import { runDagLocally } from '../../cli/local-run.ts';
import { ROOT, runCli, type CliResult } from '../helpers/cli.ts';

const FOLDER = path.join(ROOT, 'tests/fixtures/inspect');
let dataDir: string;
let runId: string;
const updraft = (args: string[]): Promise<CliResult> => runCli(args, { UPDRAFT_DATA_DIR: dataDir, UPDRAFT_DAGS_FOLDER: FOLDER });

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'updraft-inspect-cli-'));
  const database = await openDatabase({ dataDir: path.join(dataDir, 'db') });
  try {
    await database.migrate();
    const bag = await DagBag.load(FOLDER);
    ({ runId } = await runDagLocally(database, bag, bag.get('insp_graph'), {}));
  } finally {
    await database.close();
  }
});

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('updraft dags test --json', () => {
  it('gives each TI its timing, error and return value, cutting a long one and saying so', async () => {
    const r = await updraft(['dags', 'test', 'insp_graph', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ dagId: 'insp_graph', state: 'success' });
    expect(Date.parse(out.endDate)).toBeGreaterThanOrEqual(Date.parse(out.startDate));
    const byId = new Map(out.taskInstances.map((t: { taskId: string; mapIndex: number }) => [`${t.taskId}${t.mapIndex >= 0 ? `[${t.mapIndex}]` : ''}`, t]));
    expect(byId.get('double[2]')).toMatchObject({ state: 'success', tryNumber: 1, error: null, returnValue: 6 });
    expect(byId.get('report')).toMatchObject({ returnValue: { total: 12, chars: 5000 } });
    const big = byId.get('big') as { returnValue: string; returnValueTruncated: unknown; duration: number; startDate: string; endDate: string };
    expect(big.returnValue).toHaveLength(2000);
    expect(big.returnValueTruncated).toEqual({ totalChars: 5002, shownChars: 2000 });
    expect(big.duration).toBeGreaterThanOrEqual(0);
    expect(Date.parse(big.endDate)).toBeGreaterThanOrEqual(Date.parse(big.startDate));
  });

  it('shows durations in its table', async () => {
    const r = await updraft(['dags', 'test', 'insp_graph']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^taskId\s+mapIndex\s+state\s+tryNumber\s+duration/);
    expect(r.stdout).toMatch(/^report\s+-1\s+success\s+1\s+\d+\.\d{3}s/m);
    expect(r.stdout).toMatch(/: success in \d+\.\d+s\n$/);
  });
});

describe('updraft dags show', () => {
  it('prints the graph as text, upstream first', async () => {
    const r = await updraft(['dags', 'show', 'insp_graph']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('insp_graph: 4 task(s)\nextract  -> double\nbig      -> report\ndouble   -> report\nreport\n');
  });

  it('prints Graphviz with --dot', async () => {
    const r = await updraft(['dags', 'show', 'insp_graph', '--dot']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^digraph "insp_graph" \{\n/);
    expect(r.stdout).toContain('  "extract" -> "double";\n  "big" -> "report";\n  "double" -> "report";\n}\n');
  });
});

describe('updraft dags pause|unpause', () => {
  it('switches the DAG and dags list shows it', async () => {
    expect((await updraft(['dags', 'pause', 'insp_graph'])).stdout).toMatch(/^DAG insp_graph paused/);
    let list = JSON.parse((await updraft(['dags', 'list', '--json'])).stdout);
    expect(list.dags[0]).toMatchObject({ dagId: 'insp_graph', paused: true });
    expect((await updraft(['dags', 'list'])).stdout).toMatch(/^insp_graph\s+4\s+true/m);
    expect((await updraft(['dags', 'unpause', 'insp_graph'])).stdout).toBe('DAG insp_graph unpaused\n');
    list = JSON.parse((await updraft(['dags', 'list', '--json'])).stdout);
    expect(list.dags[0].paused).toBe(false);
    const r = await updraft(['dags', 'pause', 'nope']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^updraft: .*nope/);
  });
});

describe('updraft tasks states-for-dag-run and xcom', () => {
  it('lists every TI of a run with its state', async () => {
    const r = await updraft(['tasks', 'states-for-dag-run', 'insp_graph', runId, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.state).toBe('success');
    const states = out.taskInstances.map((t: { taskId: string; mapIndex: number; state: string }) => `${t.taskId}:${t.mapIndex}:${t.state}`);
    expect(states).toEqual(expect.arrayContaining(['big:-1:success', 'double:0:success', 'double:1:success', 'double:2:success', 'extract:-1:success', 'report:-1:success']));
    const text = await updraft(['tasks', 'states-for-dag-run', 'insp_graph', runId]);
    expect(text.stdout).toMatch(/^extract\s+-1\s+success\s+1\s+\S+Z\s+\S+Z\s+\d+\.\d{3}s$/m);
    expect((await updraft(['tasks', 'states-for-dag-run', 'insp_graph', 'nope'])).stderr).toBe('updraft: DAG "insp_graph" has no run "nope"; see `updraft runs list --dag-id insp_graph`\n');
  });

  it('gets one XCom, by key and map index', async () => {
    expect((await updraft(['xcom', 'get', 'insp_graph', runId, 'report'])).stdout).toBe('{\n  "chars": 5000,\n  "total": 12\n}\n');
    expect(JSON.parse((await updraft(['xcom', 'get', 'insp_graph', runId, 'double', '--map-index', '1', '--json'])).stdout))
      .toEqual({ dagId: 'insp_graph', runId, taskId: 'double', mapIndex: 1, key: 'return_value', value: 4 });
    const missing = await updraft(['xcom', 'get', 'insp_graph', runId, 'report', '--key', 'other']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`updraft: no XCom "other" for task "report" in run "${runId}"; it has return_value\n`);
  });

  it('lists a run\'s XComs, or one task\'s', async () => {
    const all = JSON.parse((await updraft(['xcom', 'list', 'insp_graph', runId, '--json'])).stdout) as { taskId: string; mapIndex: number; value: unknown }[];
    expect(all.map((x) => `${x.taskId}:${x.mapIndex}`)).toEqual(['big:-1', 'double:0', 'double:1', 'double:2', 'extract:-1', 'report:-1']);
    const one = await updraft(['xcom', 'list', 'insp_graph', runId, '--task', 'extract']);
    expect(one.stdout).toMatch(/^extract\s+-1\s+return_value\s+\[1,2,3\]/m);
  });
});
