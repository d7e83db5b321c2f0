/**
 * The SFTP operator, sensor and trigger in real runs (scheduler, worker and triggerer on an
 * in-memory database) against a real sshd: get/put/delete, the sensor deferred and not, with
 * a pattern, newerThan and a function check on resume, and 200 deferred sensors polling
 * through a few pooled connections.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, queries, DagBag, TaskState, serializeTrigger, deserializeTrigger, type Database } from '../../../core/index.ts';
import { SftpTrigger, closeSftpPools } from '../../../providers/sftp/index.ts';
import { runDagLocally } from '../../../cli/local-run.ts';
import { fixture } from '../../triggerer/harness.ts';
import { startSshd, sshdAvailable, type Sshd } from '../../helpers/sshd.ts';

const required = process.env.CI === 'true';
const SENSORS = 200;
let sshd: Sshd;
let local: string;
let bag: DagBag;
let database: Database;

beforeAll(async () => {
  if (!sshdAvailable) {
    if (required) throw new Error('sshd is required in CI: .ci/run installs openssh-server');
    return;
  }
  sshd = await startSshd();
  local = mkdtempSync(path.join(os.tmpdir(), 'updraft-sftp-ops-'));
  for (const d of ['landing', 'flags', 'batch', 'many']) mkdirSync(path.join(sshd.root, d));
  execFileSync('chown', ['-R', `${sshd.user}:`, sshd.root]);
  mkdirSync(path.join(local, 'up'));
  writeFileSync(path.join(local, 'up', 'a.txt'), 'file a');
  writeFileSync(path.join(local, 'up', 'b.txt'), 'file b');
  process.env.UPDRAFT_CONN_TEST_SFTP = JSON.stringify({ conn_type: 'sftp', host: '127.0.0.1', port: sshd.port, login: sshd.user, extra: { private_key: sshd.privateKey, host_key: sshd.hostKey } });
  process.env.SFTP_TEST_ROOT = sshd.root;
  process.env.SFTP_TEST_LOCAL = local;
  process.env.SFTP_TEST_SENSORS = String(SENSORS);
  bag = await DagBag.load(fixture('sftp'));
  expect([...bag.errors]).toEqual([]);
});
afterAll(async () => {
  for (const k of ['UPDRAFT_CONN_TEST_SFTP', 'SFTP_TEST_ROOT', 'SFTP_TEST_LOCAL', 'SFTP_TEST_SENSORS']) delete process.env[k];
  closeSftpPools();
  await sshd?.stop();
  if (local) rmSync(local, { recursive: true, force: true });
});
beforeEach(async () => {
  database = await openDatabase({ dataDir: 'memory://' });
  await database.migrate();
});
afterEach(async () => { await database?.close(); });

const run = (dagId: string) => runDagLocally(database, bag, bag.get(dagId), {});
const runPkOf = async (runId: string) => (await queries.dagRuns.getRun(database.db, runId))[0].id;
const xcom = (runPk: number, taskId: string) => queries.xcom.readXCom(database.db, runPk, taskId, 'return_value', -1);
const logText = async (tiId: number) => (await queries.logs.readLogs(database.db, tiId)).map((l) => l.message).join('\n');
const later = (ms: number, fn: () => void) => new Promise<void>((resolve) => setTimeout(() => { fn(); resolve(); }, ms));
const remoteFile = (p: string, content: string, mtime?: Date) => {
  const full = path.join(sshd.root, p);
  writeFileSync(full, content);
  if (mtime) utimesSync(full, mtime, mtime);
};

describe.skipIf(!sshdAvailable && !required)('SFTP operators in real runs', () => {
  it('puts two files (creating directories), gets one and deletes the other', async () => {
    const result = await run('sftp_ops');
    expect(result.state).toBe('success');
    const ds = readdirOnly(path.join(sshd.root, 'ops'));
    expect(readFileSync(path.join(sshd.root, 'ops', ds, 'a.txt'), 'utf8')).toBe('file a');
    expect(existsSync(path.join(sshd.root, 'ops', ds, 'b.txt'))).toBe(false);
    expect(readFileSync(path.join(local, 'down', ds, 'a.txt'), 'utf8')).toBe('file a');
    const runPk = await runPkOf(result.runId);
    expect(await xcom(runPk, 'get')).toEqual([path.join(local, 'down', ds, 'a.txt')]);
    const getTi = result.taskInstances.find((t) => t.taskId === 'get')!;
    expect(await logText(getTi.id)).toMatch(/get: 1 file\(s\), 6 bytes/);
  });

  it('the deferrable sensor waits in the triggerer for a new file matching the pattern', async () => {
    remoteFile('landing/old.xml', '<old/>', new Date('2020-06-01T00:00:00Z'));
    remoteFile('landing/notes.txt', 'not matched');
    const [result] = await Promise.all([run('sftp_sensor_deferred'), later(1500, () => remoteFile('landing/new.xml', '<new/>'))]);
    expect(result.state).toBe('success');
    const files = await xcom(await runPkOf(result.runId), 'wait_xml') as { name: string }[];
    expect(files.map((f) => f.name)).toEqual(['new.xml']);
    const log = await logText(result.taskInstances[0].id);
    expect(log.match(/deferred on trigger sftp\.SftpTrigger/g)).toHaveLength(1);
  });

  it('the sensor without deferral pokes from the worker until the path exists', async () => {
    const [result] = await Promise.all([run('sftp_sensor_worker'), later(1000, () => remoteFile('flags/done.flag', ''))]);
    expect(result.state).toBe('success');
    expect(await logText(result.taskInstances[0].id)).toMatch(/nothing yet \(poke 1\)/);
  });

  it('runs the function check on resume, and waits again while it says not yet', async () => {
    remoteFile('batch/part-1.csv', 'a');
    const [result] = await Promise.all([run('sftp_sensor_checked'), later(2000, () => { remoteFile('batch/part-2.csv', 'b'); remoteFile('batch/part-3.csv', 'c'); })]);
    expect(result.state).toBe('success');
    const files = await xcom(await runPkOf(result.runId), 'wait_three') as { name: string }[];
    expect(files.map((f) => f.name)).toEqual(['part-1.csv', 'part-2.csv', 'part-3.csv']);
    const log = await logText(result.taskInstances[0].id);
    expect(log).toContain('1 file(s) matched but the check said not yet; waiting again');
  });

  it(`${SENSORS} deferred sensors on one server poll through at most max_connections SSH connections`, async () => {
    // Start from no pooled connection, so every connection the waits use is a login counted here.
    closeSftpPools();
    const before = sshd.acceptedLogins();
    const [result] = await Promise.all([
      run('sftp_many_sensors'),
      later(4000, () => { for (let i = 0; i < SENSORS; i++) remoteFile(`many/s${i}.ready`, ''); }),
    ]);
    expect(result.state).toBe('success');
    expect(result.taskInstances.filter((t) => t.state === TaskState.SUCCESS)).toHaveLength(SENSORS);
    // Counted on the server: every login is one SSH connection.
    const logins = sshd.acceptedLogins() - before;
    expect(logins).toBeGreaterThanOrEqual(1);
    expect(logins).toBeLessThanOrEqual(4);
  }, 240_000);
});

describe('SftpTrigger', () => {
  it('round-trips through serialize and deserialize, and identical waits serialize identically', () => {
    const t = new SftpTrigger({ connId: 'x', path: '/in', pattern: '*.xml', newerThan: '2024-01-01T00:00:00.000Z', pokeIntervalMs: 500 });
    const stored = serializeTrigger(t);
    expect(stored.name).toBe('sftp.SftpTrigger');
    const back = deserializeTrigger(JSON.parse(JSON.stringify(stored)));
    expect(back).toBeInstanceOf(SftpTrigger);
    expect(serializeTrigger(back)).toEqual(stored);
    expect(JSON.stringify(serializeTrigger(new SftpTrigger({ connId: 'x', path: '/in', pattern: '*.xml', newerThan: '2024-01-01T00:00:00.000Z', pokeIntervalMs: 500 })))).toBe(JSON.stringify(stored));
    expect(() => new SftpTrigger({ connId: 'x', path: '/in', newerThan: 'yesterday' })).toThrow();
  });
});

function readdirOnly(dir: string): string {
  const entries = execFileSync('ls', [dir]).toString().trim().split('\n');
  expect(entries).toHaveLength(1);
  return entries[0];
}
