import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ROOT, runCli, type CliResult } from '../helpers/cli.ts';
const CLI_FIXTURES = path.join(ROOT, 'tests/fixtures/authoring-cli');

let dataDir: string;

/** Run `node bin/updraft.js ...args` with a clean environment: no DATABASE_URL, a throwaway data dir. */
function updraft(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCli(args, { UPDRAFT_DATA_DIR: dataDir, UPDRAFT_DAGS_FOLDER: 'dags', ...env });
}

const lines = (text: string) => text.split('\n').filter((l) => l.length > 0);

/** A user-caused failure: exit 1 and exactly one `updraft:` line on stderr, no stack trace. */
function expectOneErrorLine(r: CliResult, message: RegExp): void {
  expect(r.code, r.stderr).toBe(1);
  expect(lines(r.stderr)).toHaveLength(1);
  expect(r.stderr).toMatch(/^updraft: /);
  expect(r.stderr.trimEnd()).toMatch(message);
}

beforeAll(() => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'updraft-cli-test-'));
});

afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

describe('updraft command line', () => {
  it('prints usage for --help', async () => {
    const r = await updraft(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: updraft <command>\n/);
    expect(r.stdout).toContain('dags test <dagId> [--conf JSON] [--json]');
  });

  it('rejects an unknown command with one line', async () => {
    expectOneErrorLine(await updraft(['frobnicate']), /^updraft: unknown command "frobnicate"; run `updraft --help`$/);
  });

  it('lists the example DAGs as JSON', async () => {
    const r = await updraft(['dags', 'list', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { dags: { dagId: string; fileloc: string; tasks: number }[]; importErrors: unknown[] };
    expect(out.importErrors).toEqual([]);
    expect(out.dags.map((d) => [d.dagId, path.relative(ROOT, d.fileloc), d.tasks])).toEqual([
      ['bigquery_report', 'dags/bigquery-report.ts', 3],
      ['branching', 'dags/branching.ts', 7],
      ['concurrency_executor', 'dags/concurrency-executor.ts', 7],
      ['concurrency_pools', 'dags/concurrency-pools.ts', 2],
      ['concurrency_run_queue', 'dags/concurrency-run-queue.ts', 1],
      ['concurrency_tags', 'dags/concurrency-tags.ts', 9],
      ['cron_catchup', 'dags/cron-catchup.ts', 2],
      ['dbt_shop', 'dags/dbt-shop.ts', 19],
      ['dbt_shop_report', 'dags/dbt-shop.ts', 1],
      ['deferrable_custom', 'dags/deferrable-custom.ts', 2],
      ['deferrable_sensor', 'dags/deferrable-sensor.ts', 2],
      ['fanout', 'dags/fanout.ts', 3],
      ['http_health', 'dags/http-health.ts', 3],
      ['mixed_sync_async', 'dags/mixed-sync-async.ts', 102],
      ['seed000_expand', 'dags/seed000-expand.ts', 3],
      ['seed000_iterate', 'dags/seed000-iterate.ts', 3],
      ['sftp_bulk_download', 'dags/sftp-bulk-download.ts', 2],
      ['templated_report', 'dags/templated-report.ts', 1],
      ['trigger_rules_retries', 'dags/trigger-rules-retries.ts', 9],
    ]);
  });

  it('refuses to trigger an unknown DAG and names the known ones', async () => {
    const r = await updraft(['dags', 'trigger', 'nope']);
    expectOneErrorLine(r, /^updraft: unknown DAG "nope"; known DAGs: bigquery_report, branching, concurrency_executor, concurrency_pools, .*, trigger_rules_retries$/);
    expect(existsSync(path.join(dataDir, 'db'))).toBe(true);
  });

  it('rejects --conf that is not JSON', async () => {
    const r = await updraft(['dags', 'test', 'fanout', '--conf', '{bad']);
    expectOneErrorLine(r, /^updraft: --conf is not valid JSON \(.+\); pass an object such as --conf '\{"limit": 5\}'$/);
    expect(r.stdout).toBe('');
  });

  it('lists import errors, one line per broken file', async () => {
    const r = await updraft(['import-errors'], { UPDRAFT_DAGS_FOLDER: CLI_FIXTURES });
    expect(r.code, r.stderr).toBe(0);
    expect(lines(r.stdout)).toHaveLength(1);
    expect(r.stdout).toMatch(new RegExp(`^${path.join(CLI_FIXTURES, 'broken.mjs').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: SyntaxError: `));
  });

  it('rejects a run conf that violates the params schema, naming the DAG and the param', async () => {
    const r = await updraft(['dags', 'test', 'cli_params', '--conf', '{"limit": "many"}'], { UPDRAFT_DAGS_FOLDER: CLI_FIXTURES });
    expectOneErrorLine(r, /^updraft: DAG "cli_params": run conf is invalid: limit: .+$/);
  });

  it('gives up on an unreachable database after a few retries, without a stack trace', async () => {
    const r = await updraft(['runs', 'list'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/x' });
    expect(r.code).not.toBe(0);
    expect(r.ms).toBeLessThan(30_000);
    const err = lines(r.stderr);
    expect(err.every((l) => l.startsWith('updraft: '))).toBe(true);
    expect(err.some((l) => / unreachable \(.+\); retry 1 of \d+ in /.test(l))).toBe(true);
    expect(err.at(-1)).toMatch(/^updraft: cannot reach database postgres:\/\/postgres@127\.0\.0\.1:1\/x after \d+ attempt\(s\): .+ Is PostgreSQL running, and is DATABASE_URL right\?$/);
    expect(r.stderr).not.toMatch(/^ {4}at /m);
  });
});

describe('updraft dags test --json on the example DAGs', () => {
  type TiRow = { taskId: string; mapIndex: number; state: string; tryNumber: number };
  type RunJson = { dagId: string; runId: string; state: string; taskInstances: TiRow[] };

  async function testDag(dagId: string): Promise<RunJson> {
    const r = await updraft(['dags', 'test', dagId, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as RunJson;
    expect(Object.keys(out).sort()).toEqual(['dagId', 'endDate', 'runId', 'startDate', 'state', 'taskInstances']);
    expect(out).toMatchObject({ dagId, state: 'success' });
    expect(out.runId).toMatch(/^manual__/);
    for (const ti of out.taskInstances) {
      expect(Object.keys(ti).filter((k) => k !== 'returnValueTruncated').sort())
        .toEqual(['duration', 'endDate', 'error', 'mapIndex', 'returnValue', 'startDate', 'state', 'taskId', 'tryNumber']);
    }
    return out;
  }

  const states = (out: RunJson) => Object.fromEntries(out.taskInstances.map((t) => [t.mapIndex >= 0 ? `${t.taskId}[${t.mapIndex}]` : t.taskId, [t.state, t.tryNumber]]));
  const allSucceededOnce = (ids: string[]) => Object.fromEntries(ids.map((id) => [id, ['success', 1]]));

  it('fanout', async () => {
    const ids = ['create_items', ...[0, 1, 2, 3, 4].map((i) => `process_item[${i}]`), 'collect_results'];
    expect(states(await testDag('fanout'))).toEqual(allSucceededOnce(ids));
  });

  it('concurrency_pools', async () => {
    const ids = [...[0, 1, 2, 3, 4].map((i) => `query[${i}]`), ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `fetch[${i}]`)];
    expect(states(await testDag('concurrency_pools'))).toEqual(allSucceededOnce(ids));
  });

  // Each of these must exit 0 with every TI succeeded on its first try.
  for (const dagId of ['concurrency_executor', 'concurrency_tags', 'concurrency_run_queue', 'deferrable_custom', 'deferrable_sensor', 'seed000_expand', 'seed000_iterate']) {
    it(dagId, async () => {
      const out = await testDag(dagId);
      expect(out.taskInstances.length).toBeGreaterThan(0);
      for (const ti of out.taskInstances) expect([ti.taskId, ti.mapIndex, ti.state, ti.tryNumber]).toEqual([ti.taskId, ti.mapIndex, 'success', 1]);
    });
  }

  it('mixed_sync_async', async () => {
    const ids = ['crunch_numbers', 'fetch', ...Array.from({ length: 99 }, (_, i) => `fetch__${i + 1}`), 'report'];
    expect(states(await testDag('mixed_sync_async'))).toEqual(allSucceededOnce(ids));
  });

  it('branching', async () => {
    // The path not taken is skipped; the join runs; a truthy short-circuit lets announce run.
    expect(states(await testDag('branching'))).toEqual({
      ...allSucceededOnce(['inspect', 'choose_path', 'incremental', 'publish', 'any_new_rows', 'announce']),
      full_reload: ['skipped', 0],
    });
  });

  it('cron_catchup', async () => {
    expect(states(await testDag('cron_catchup'))).toEqual(allSucceededOnce(['extract', 'load']));
  });

  it('trigger_rules_retries', async () => {
    // The states the DAG file's header comment promises.
    expect(states(await testDag('trigger_rules_retries'))).toEqual({
      flaky: ['success', 2],
      always_fails: ['failed', 1],
      maybe_skip: ['skipped', 1],
      on_success_path: ['upstream_failed', 0],
      cleanup: ['success', 1],
      alert: ['success', 1],
      needs_no_skips: ['skipped', 0],
      tolerant: ['success', 1],
      final: ['success', 1],
    });
  });
});
