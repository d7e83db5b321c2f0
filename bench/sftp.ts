/**
 * `npm run bench -- sftp --json`: seed 002's download against the wire's limit. A real OpenSSH
 * sshd on loopback serves 17,000 files of 2–32 KB (seeded sizes and content) in one directory,
 * behind a latency proxy in its own process that adds 10 ms each way (20 ms RTT). The bench
 * client, Updraft's pool and the plain ssh2 script use the same width: 4 connections with 64
 * requests in flight each, Nagle off. In one run:
 * - ideal_s: plain ssh2, connections already open: list, then open / read / close every file
 *   (the close not awaited), sha256 in memory. The wire's limit for this server and RTT.
 * - async_pool_s: ONE async task: SftpHook.list + SftpHook.download over the worker's shared
 *   pool, sha256 in memory (bench/dags/sftp.ts). Run start → end, the pool warm from a first
 *   untimed run, as the plain script's connections are.
 * - ideal_64_s: the plain script again with 64 requests in flight, the mapped variant's width.
 * - iterate_s: the bulk-download example, sftpBulkDownload (list, then ONE iterate TI at
 *   concurrency 128 with checkpoints), files written to LOCAL_ROOT. Run start → end.
 * - mapped_s: 17,000 mapped sftpGetTask TIs on one worker with 64 slots, files written to
 *   LOCAL_ROOT.
 * - sync_loop_per_file_ms: the seed's sync loop, one file at a time on one connection
 *   (ssh2-sftp-client's get, Nagle off), over the first 500 files; projected to all of them.
 * - resume_redownloaded: the iterate variant again on fresh services with a 3 s zombie
 *   threshold; its worker is SIGKILLed once at least 5,000 files are checkpointed (plus a
 *   random 0–100 ms, so the kill lands anywhere in the checkpoint cycle); a second worker
 *   retries the TI. Counted on the server (sftp-server's log of opens): files opened twice.
 * Every variant's files are checked against their sha256. BENCH_SFTP_ONLY=mapped,iterate (a
 * comma list of ideal, ideal64, async, iterate, mapped, sync, resume) runs only those, for profiling.
 */
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { Client, type FileEntryWithStats, type SFTPWrapper } from 'ssh2';
import SftpClient from 'ssh2-sftp-client';
import { triggerDagRun, type Database } from '../core/index.ts';
import { startSshd, type Sshd } from '../tests/helpers/sshd.ts';
import { startLatencyProxy } from '../tests/helpers/latency-proxy.ts';
import { benchDatabase, runToEnd, startService, stopService, round, log, type Run } from './harness.ts';
import { digestOf } from './dags/sftp.ts';

const FILES = Number(process.env.BENCH_SFTP_FILES ?? 17_000);
const RTT_MS = 20;
const CONNECTIONS = 4;
const IN_FLIGHT = 64;
const SYNC_SAMPLE = 500;
const KILL_AFTER = Math.min(5_000, Math.floor(FILES / 3));
const ONLY = process.env.BENCH_SFTP_ONLY ? new Set(process.env.BENCH_SFTP_ONLY.split(',')) : null;
const wanted = (variant: string) => !ONLY || ONLY.has(variant);
/**
 * Where the variants that write files put them: tmpfs when the machine has one. On this
 * project's test machines creating a file on the ext4 root costs from 25 µs to 0.9 ms of kernel
 * time, depending on the directory's history, so 17,000 of them on disk would measure the inode
 * allocator rather than SFTP (the plain script writes nothing). BENCH_SFTP_LOCAL_DIR overrides.
 */
const LOCAL_ROOT = process.env.BENCH_SFTP_LOCAL_DIR ?? (existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir());

/** Seeded sizes and bytes: AES-CTR over zeros, keyed per file. */
function makeFiles(dir: string): Map<string, string> {
  mkdirSync(dir);
  const sums = new Map<string, string>();
  let seed = 2002;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let i = 0; i < FILES; i++) {
    const size = 2048 + Math.floor(rand() * (32 * 1024 - 2048));
    const key = createHash('sha256').update(`seed-002:${i}`).digest();
    const body = createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
    const name = `doc-${String(i).padStart(5, '0')}.xml`;
    writeFileSync(path.join(dir, name), body);
    sums.set(name, createHash('sha256').update(body).digest('hex'));
  }
  return sums;
}

function sshConnect(port: number, sshd: Sshd): Promise<{ client: Client; sftp: SFTPWrapper }> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect({ host: '127.0.0.1', port, noDelay: true });
    const client = new Client();
    client.once('error', reject);
    client.once('ready', () => client.sftp((err, sftp) => (err ? reject(err) : resolve({ client, sftp }))));
    client.connect({ sock, username: sshd.user, privateKey: sshd.privateKey, hostVerifier: (k: Buffer) => k.toString('base64') === sshd.hostKey.split(' ')[1] });
  });
}

/** The plain ssh2 script: list, then open / read / close every file, 4 × 64 in flight (or `lanes`). */
async function bare(port: number, sshd: Sshd, dir: string, sums: Map<string, string>, lanes = CONNECTIONS * IN_FLIGHT): Promise<{ total: number; list: number }> {
  const conns = await Promise.all(Array.from({ length: CONNECTIONS }, () => sshConnect(port, sshd)));
  try {
    const started = performance.now();
    const entries = await new Promise<FileEntryWithStats[]>((resolve, reject) => conns[0].sftp.readdir(dir, (err, list) => (err ? reject(err) : resolve(list))));
    const files = entries.filter((e) => e.filename.endsWith('.xml'));
    const listed = performance.now();
    const got: [string, string][] = [];
    let next = 0;
    const lane = async (sftp: SFTPWrapper) => {
      while (next < files.length) {
        const f = files[next++];
        const p = `${dir}/${f.filename}`;
        const handle = await new Promise<Buffer>((resolve, reject) => sftp.open(p, 'r', (err, h) => (err ? reject(err) : resolve(h))));
        const buf = Buffer.allocUnsafe(f.attrs.size + 1);
        const nb = await new Promise<number>((resolve, reject) => sftp.read(handle, buf, 0, buf.length, 0, (err, n) => (err ? reject(err) : resolve(n))));
        sftp.close(handle, () => {});
        got.push([f.filename, createHash('sha256').update(buf.subarray(0, nb)).digest('hex')]);
      }
    };
    await Promise.all(Array.from({ length: lanes }, (_, i) => lane(conns[i % CONNECTIONS].sftp)));
    const s = (performance.now() - started) / 1000;
    if (got.length !== sums.size || got.some(([n, h]) => sums.get(n) !== h)) throw new Error('bare ssh2: checksums differ');
    return { total: s, list: (listed - started) / 1000 };
  } finally {
    for (const c of conns) c.client.end();
  }
}

/** The seed's sync loop: one connection, one file at a time. */
async function syncLoop(port: number, sshd: Sshd, dir: string, sums: Map<string, string>): Promise<number> {
  const client = new SftpClient('bench-sync-loop');
  await client.connect({
    sock: tcpConnect({ host: '127.0.0.1', port, noDelay: true }), username: sshd.user, privateKey: sshd.privateKey,
    hostVerifier: (k: Buffer) => k.toString('base64') === sshd.hostKey.split(' ')[1],
  });
  try {
    const names = [...sums.keys()].slice(0, SYNC_SAMPLE);
    const started = performance.now();
    for (const n of names) {
      const data = await client.get(`${dir}/${n}`) as Buffer;
      if (createHash('sha256').update(data).digest('hex') !== sums.get(n)) throw new Error(`sync loop: ${n} differs`);
    }
    return (performance.now() - started) / names.length;
  } finally {
    await client.end();
  }
}

function checkDisk(to: string, sums: Map<string, string>, what: string): void {
  const names = readdirSync(to);
  if (names.length !== sums.size) throw new Error(`${what}: ${names.length} files on disk, expected ${sums.size}`);
  for (const n of names) if (createHash('sha256').update(readFileSync(path.join(to, n))).digest('hex') !== sums.get(n)) throw new Error(`${what}: ${n} differs`);
}

const runSeconds = (run: Run) => (run.endDate!.getTime() - run.startDate!.getTime()) / 1000;

async function returnValue(database: Database, run: Run, taskId: string): Promise<unknown> {
  const [row] = await database.rows<{ value: unknown }>(sql`select value from xcom where run_pk = ${run.id} and task_id = ${taskId} and key = 'return_value'`);
  return row?.value;
}

export async function sftpBench(json: boolean): Promise<Record<string, unknown>> {
  const sshd = await startSshd({ countOpens: true, maxStartups: '100:30:200' });
  const dir = path.join(sshd.root, 'outbox');
  const to = mkdtempSync(path.join(LOCAL_ROOT, 'updraft-bench-sftp-'));
  const cleanTo = () => { rmSync(to, { recursive: true, force: true }); mkdirSync(to); };
  log(json, `writing ${FILES} files…`);
  const sums = makeFiles(dir);
  execFileSync('chown', ['-R', `${sshd.user}:`, sshd.root]);
  const proxy = await startLatencyProxy({ host: '127.0.0.1', port: sshd.port }, RTT_MS / 2);
  const conn = { conn_type: 'sftp', host: '127.0.0.1', port: proxy.port, login: sshd.user, extra: { private_key: sshd.privateKey, host_key: sshd.hostKey, max_connections: CONNECTIONS, max_in_flight: IN_FLIGHT } };
  const bench = await benchDatabase('updraft_bench_sftp', {
    UPDRAFT_CONN_BENCH_SFTP: JSON.stringify(conn), BENCH_SFTP_DIR: dir, BENCH_SFTP_TO: to, UPDRAFT_MAX_MAP_LENGTH: String(FILES + 1000),
  });
  const { env, database, bag } = bench;
  let services = [startService(['scheduler'], env), startService(['worker', '--slots', String(IN_FLIGHT)], env)];
  const result: Record<string, unknown> = { bench: 'sftp', files: FILES, rtt_ms: RTT_MS, local_dir: LOCAL_ROOT };
  const expected = digestOf([...sums]);
  try {
    /** kill -9 the iterate variant's worker mid-download, on fresh services with a short zombie threshold. */
    async function resume(): Promise<{ resume_redownloaded: number; resume_killed_at: number }> {
      await Promise.all(services.map(stopService));
      cleanTo();
      const fast = { ...env, UPDRAFT_HEARTBEAT: '1s', UPDRAFT_ZOMBIE_THRESHOLD: '3s' };
      const scheduler = startService(['scheduler'], fast);
      const worker1 = startService(['worker', '--slots', String(IN_FLIGHT)], fast);
      services = [scheduler, worker1];
      const before = sshd.openCounts();
      const { runPk } = await triggerDagRun(database, bag.get('bench_sftp_iterate'), {});
      const checkpointed = async () => (await database.rows<{ n: number }>(sql`
        select count(*)::int as n from iterate_items i join task_instances t on t.id = i.ti_id where t.run_pk = ${runPk} and i.state = 'success'`))[0].n;
      for (const deadline = Date.now() + 600_000; (await checkpointed()) < KILL_AFTER;) {
        if (Date.now() > deadline) throw new Error('resume: the download never reached the kill point');
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, Math.random() * 100));
      worker1.kill('SIGKILL');
      const atKill = await checkpointed();
      // Requests already on the wire reach the server before the killed worker's sessions end.
      for (const deadline = Date.now() + 60_000; sshd.sessionPids().length && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 50));
      services.push(startService(['worker', '--slots', String(IN_FLIGHT)], fast));
      for (const deadline = Date.now() + 600_000; ;) {
        const [r] = await database.rows<{ state: string }>(sql`select state from dag_runs where id = ${runPk}`);
        if (r.state === 'success') break;
        if (r.state === 'failed' || Date.now() > deadline) throw new Error(`resume: run ${r.state}`);
        await new Promise((r2) => setTimeout(r2, 100));
      }
      checkDisk(to, sums, 'resume');
      const after = sshd.openCounts();
      let again = 0;
      for (const name of sums.keys()) {
        const p = `${dir}/${name}`;
        const opens = (after.get(p) ?? 0) - (before.get(p) ?? 0);
        if (opens < 1) throw new Error(`resume: ${name} was never fetched`);
        if (opens > 1) again++;
      }
      log(json, `resume: killed at ${atKill} checkpointed; ${again} of ${FILES} files fetched again`);

      return { resume_redownloaded: again, resume_killed_at: atKill };
    }

    // Warm the services and the worker's pool, untimed.
    await runToEnd(database, bag, 'bench_sftp_async', {}, 600_000);

    if (wanted('ideal')) {
      const ideal = await bare(proxy.port, sshd, dir, sums);
      log(json, `plain ssh2: ${FILES} files in ${ideal.total.toFixed(2)} s (its readdir ${ideal.list.toFixed(2)} s)`);
      result.ideal_s = round(ideal.total);
      result.ideal_list_s = round(ideal.list);
    }

    if (wanted('ideal64')) {
      // The mapped variant's width: 64 slots, so 64 requests in flight.
      const ideal64 = await bare(proxy.port, sshd, dir, sums, IN_FLIGHT);
      log(json, `plain ssh2, ${IN_FLIGHT} in flight: ${FILES} files in ${ideal64.total.toFixed(2)} s (its readdir ${ideal64.list.toFixed(2)} s)`);
      result.ideal_64_s = round(ideal64.total);
      result.ideal_64_download_s = round(ideal64.total - ideal64.list);
    }

    if (wanted('async')) {
      const asyncRun = await runToEnd(database, bag, 'bench_sftp_async', {}, 600_000);
      const asyncS = runSeconds(asyncRun);
      const asyncOut = await returnValue(database, asyncRun, 'download_all') as { files: number; digest: string };
      if (asyncOut.files !== FILES || asyncOut.digest !== expected) throw new Error('async task: checksums differ');
      log(json, `one async task with SftpHook: ${asyncS.toFixed(2)} s`);
      result.async_pool_s = round(asyncS);
    }

    if (wanted('iterate')) {
      cleanTo();
      const iterateS = runSeconds(await runToEnd(database, bag, 'bench_sftp_iterate', {}, 600_000));
      checkDisk(to, sums, 'iterate');
      log(json, `iterate (bulk-download example): ${iterateS.toFixed(2)} s`);
      result.iterate_s = round(iterateS);
    }

    if (wanted('mapped')) {
      cleanTo();
      const mappedRun = await runToEnd(database, bag, 'bench_sftp_mapped', {}, 1_800_000);
      const mappedS = runSeconds(mappedRun);
      checkDisk(to, sums, 'mapped');
      const [phase] = await database.rows<{ listed: number; first: number; last: number }>(sql`
        select extract(epoch from max(end_date) filter (where task_id = 'list_files') - ${mappedRun.startDate!.toISOString()}::timestamptz)::float8 as listed,
               extract(epoch from min(start_date) filter (where task_id = 'get_one') - ${mappedRun.startDate!.toISOString()}::timestamptz)::float8 as first,
               extract(epoch from max(end_date) filter (where task_id = 'get_one') - ${mappedRun.startDate!.toISOString()}::timestamptz)::float8 as last
        from task_instances where run_pk = ${mappedRun.id}`);
      log(json, `${FILES} mapped TIs: ${mappedS.toFixed(2)} s (listed at ${phase.listed.toFixed(2)} s, first get at ${phase.first.toFixed(2)} s, last done at ${phase.last.toFixed(2)} s)`);
      result.mapped_s = round(mappedS);
    }

    if (wanted('sync')) {
      const perFile = await syncLoop(proxy.port, sshd, dir, sums);
      log(json, `sync loop: ${perFile.toFixed(1)} ms per file (projected ${((perFile * FILES) / 60_000).toFixed(1)} min for ${FILES})`);
      result.sync_loop_per_file_ms = round(perFile, 1);
      result.sync_loop_projected_s = round((perFile * FILES) / 1000, 0);
    }
    if (typeof result.async_pool_s === 'number' && typeof result.ideal_s === 'number') result.ratio_pool_vs_ideal = round(result.async_pool_s / result.ideal_s);

    if (wanted('resume')) Object.assign(result, await resume());
    return result;
  } finally {
    await Promise.all(services.map(stopService));
    await bench.close();
    await proxy.stop();
    await sshd.stop();
    rmSync(to, { recursive: true, force: true });
  }
}
