/** Log retention: the per-try byte cap, and task logs written to files that `tasks logs` reads back. */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureTaskLogs, DagBag, logFilePath, openDatabase, queries, taskLogSettings } from '../../core/index.ts';
import { LogBuffer } from '../../core/runtime/task-log.ts';
import { runDagLocally } from '../../cli/local-run.ts';
import { ROOT, runCli } from '../helpers/cli.ts';

const FOLDER = path.join(ROOT, 'tests/fixtures/task-logs');

describe('the per-try log cap', () => {
  it('keeps the head of the log and says how many bytes it cut', () => {
    const buf = new LogBuffer(100);
    buf.write('info', 'a'.repeat(60));
    buf.write('info', 'b'.repeat(60));
    buf.write('warn', 'c'.repeat(30));
    const lines = buf.drain();
    expect(lines.map((l) => l.message)).toEqual([
      'a'.repeat(60), 'b'.repeat(40),
      '… truncated 50 bytes … (the log of a try is capped at 100 bytes: UPDRAFT_LOG_MAX_BYTES_PER_TRY)',
    ]);
    expect(lines[2].level).toBe('warn');
  });

  it('is read from the environment or the config file', async () => {
    const { loadConfig } = await import('../../core/index.ts');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'updraft-log-config-'));
    try {
      expect(loadConfig({ UPDRAFT_LOG_MAX_BYTES_PER_TRY: '2048', UPDRAFT_LOG_FOLDER: '/var/log/updraft' }, dir).logs)
        .toEqual({ maxBytesPerTry: 2048, folder: '/var/log/updraft' });
      expect(loadConfig({}, dir).logs).toEqual({ maxBytesPerTry: 4 * 1024 * 1024, folder: null });
      expect(() => loadConfig({ UPDRAFT_LOG_MAX_BYTES_PER_TRY: 'lots' }, dir)).toThrow(/UPDRAFT_LOG_MAX_BYTES_PER_TRY/);
      writeFileSync(path.join(dir, 'updraft.config.json'), JSON.stringify({ logs: { maxBytesPerTry: 1000, folder: 'task-logs' } }));
      expect(loadConfig({}, dir).logs).toEqual({ maxBytesPerTry: 1000, folder: path.join(dir, 'task-logs') });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('file logs', () => {
  let dataDir: string;
  let logDir: string;
  let runId: string;
  const saved = taskLogSettings();

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'updraft-file-logs-'));
    logDir = path.join(dataDir, 'logs');
    configureTaskLogs({ maxBytesPerTry: 400, folder: logDir });
    const database = await openDatabase({ dataDir: path.join(dataDir, 'db') });
    try {
      await database.migrate();
      const bag = await DagBag.load(FOLDER);
      ({ runId } = await runDagLocally(database, bag, bag.get('logs_chatty'), {}));
      const [ti] = await database.rows<{ id: number }>((await import('drizzle-orm')).sql`select id from task_instances`);
      expect(await queries.logs.readLogs(database.db, Number(ti.id))).toEqual([]);
    } finally {
      await database.close();
      configureTaskLogs(saved);
    }
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('writes each try to its own file, capped, instead of the database', () => {
    const file = logFilePath(logDir, { id: 0, dagId: 'logs_chatty', runId, taskId: 'chatty', mapIndex: -1 }, 1);
    expect(file).toBe(path.join(logDir, 'dag_id=logs_chatty', `run_id=${encodeURIComponent(runId)}`, 'task_id=chatty', 'attempt=1.log'));
    expect(existsSync(file)).toBe(true);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { message: string });
    expect(lines[0].message).toBe('line 00 of the chatty task');
    expect(lines.at(-1)!.message).toMatch(/^… truncated \d+ bytes … \(the log of a try is capped at 400 bytes/);
    expect(lines.slice(0, -1).reduce((n, l) => n + Buffer.byteLength(l.message), 0)).toBe(400);
  });

  it('`tasks logs` reads them back', async () => {
    const r = await runCli(['tasks', 'logs', runId, 'chatty'], { UPDRAFT_DATA_DIR: dataDir, UPDRAFT_DAGS_FOLDER: FOLDER, UPDRAFT_LOG_FOLDER: logDir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^\[try 1\] \S+Z INFO line 00 of the chatty task\n/);
    expect(r.stdout).toMatch(/WARN … truncated \d+ bytes …/);
  });
});
