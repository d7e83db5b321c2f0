/**
 * Seed 002's question, answered with real processes on PostgreSQL: a bulk SFTP download
 * (iterate over 3,000 files through a 20 ms RTT latency proxy) whose worker is killed with
 * SIGKILL halfway. The retry, on another worker, fetches only the files not yet checkpointed;
 * sshd's own log counts the opens per file to prove it.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../../core/index.ts';
import { createTestDatabase, pgAvailable, waitFor, type TestPg } from '../../helpers/pg.ts';
import { Procs } from '../../helpers/int-procs.ts';
import { READY } from '../../helpers/faults.ts';
import { startSshd, sshdAvailable, type Sshd } from '../../helpers/sshd.ts';
import { startLatencyProxy, type LatencyProxy } from '../../helpers/latency-proxy.ts';

const required = process.env.CI === 'true';
const FILES = 3000;
const CONCURRENCY = 16;
const DAGS = fileURLToPath(new URL('../../fixtures/sftp-resume', import.meta.url));

let sshd: Sshd;
let proxy: LatencyProxy;
let pg: TestPg;
let local: string;
const sums = new Map<string, string>();
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  if (!sshdAvailable || !pgAvailable) {
    if (required) throw new Error('sshd and PostgreSQL are required in CI');
    return;
  }
  sshd = await startSshd({ countOpens: true });
  proxy = await startLatencyProxy({ host: '127.0.0.1', port: sshd.port }, 10);
  mkdirSync(path.join(sshd.root, 'bulk'));
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < FILES; i++) {
    const body = Buffer.alloc(512 + Math.floor(rand() * 2048), `<n>${i}</n>`);
    const name = `doc-${String(i).padStart(5, '0')}.xml`;
    writeFileSync(path.join(sshd.root, 'bulk', name), body);
    sums.set(name, sha(body));
  }
  execFileSync('chown', ['-R', `${sshd.user}:`, sshd.root]);
  local = mkdtempSync(path.join(os.tmpdir(), 'updraft-sftp-resume-'));
  pg = await createTestDatabase('updraft_sftp_resume');
  const database = await openDatabase({ databaseUrl: pg.url });
  await database.migrate();
  await database.close();
}, 120_000);
afterAll(async () => {
  await proxy?.stop();
  await sshd?.stop();
  await pg?.drop();
  if (local) rmSync(local, { recursive: true, force: true });
});

describe.skipIf((!sshdAvailable || !pgAvailable) && !required)('bulk SFTP download resumed after kill -9', () => {
  it('the retry fetches only the files not yet checkpointed', async ({ onTestFailed }) => {
    const procs = new Procs({
      DATABASE_URL: pg.url, UPDRAFT_DAGS_FOLDER: DAGS, UPDRAFT_HEARTBEAT: '1s', UPDRAFT_ZOMBIE_THRESHOLD: '3s',
      UPDRAFT_CONN_TEST_SFTP: JSON.stringify({ conn_type: 'sftp', host: '127.0.0.1', port: proxy.port, login: sshd.user, extra: { private_key: sshd.privateKey, host_key: sshd.hostKey } }),
      SFTP_TEST_ROOT: sshd.root, SFTP_TEST_LOCAL: local, SFTP_TEST_CONCURRENCY: String(CONCURRENCY),
    });
    onTestFailed(async () => { process.stderr.write(await procs.report()); });
    const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
    try {
      const start = (name: string, args: string[]) => {
        const proc = procs.start(name, args);
        return procs.waitForOutput(proc, READY, 90_000).then(() => proc);
      };
      await start('scheduler', ['scheduler']);
      const first = await start('worker-1', ['worker', '--slots', '4']);
      expect((await procs.run(['dags', 'trigger', 'sftp_resume', '--run-id', 'resume'])).code).toBe(0);

      const checkpointed = async () => (await sql<{ n: number }[]>`
        select count(*)::int as n from iterate_items i join task_instances t on t.id = i.ti_id where t.task_id = 'download' and i.state = 'success'`)[0].n;
      await waitFor(async () => (await checkpointed()) >= FILES / 3, `a third of ${FILES} files to be checkpointed`, 120_000, 20);
      // Not in step with the checkpoint writes: the kill lands anywhere in their cycle.
      await new Promise((r) => setTimeout(r, Math.random() * 100));
      first.child.kill('SIGKILL');
      await first.exited;
      const atKill = await checkpointed();
      // Requests still on their way reach the server before its sessions end: count after that.
      await waitFor(() => sshd.sessionPids().length === 0, 'the killed worker\'s SSH sessions to end', 60_000, 50);
      const openedAtKill = sshd.openCounts().size;

      await start('worker-2', ['worker', '--slots', '4']);
      await waitFor(async () => {
        const [r] = await sql<{ state: string }[]>`select state from dag_runs where run_id = 'resume'`;
        return ['success', 'failed'].includes(r?.state ?? '') ? r.state : null;
      }, 'the run to finish', 180_000, 250).then((state) => expect(state).toBe('success'));

      const [ti] = await sql<{ try_number: number }[]>`select try_number from task_instances where task_id = 'download'`;
      expect(ti.try_number).toBe(2);
      // Every file arrived intact.
      const names = readdirSync(local).filter((n) => n.endsWith('.xml'));
      expect(names).toHaveLength(FILES);
      for (const n of names) expect(sha(readFileSync(path.join(local, n)))).toBe(sums.get(n));
      // Opens per file, from the server's log: the files opened twice are the re-downloads.
      const counts = sshd.openCounts();
      expect(counts.size).toBe(FILES);
      const twice = [...counts.values()].filter((c) => c > 1).length;
      expect([...counts.values()].every((c) => c <= 2)).toBe(true);
      process.stdout.write(`sftp resume: killed with ${atKill} of ${FILES} checkpointed (${openedAtKill} opened); ${twice} file(s) fetched again\n`);
      // What the retry may redo: the files in flight at the kill and those finished since the last checkpoint.
      expect(twice).toBeLessThanOrEqual(openedAtKill - atKill);
      expect(twice).toBeLessThan(FILES * 0.05);
    } finally {
      await procs.stopAll();
      await sql.end({ timeout: 1 });
    }
  }, 400_000);
});
