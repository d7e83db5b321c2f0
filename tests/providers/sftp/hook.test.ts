/**
 * SftpHook and its pool against a real OpenSSH sshd on loopback (one for the file): password
 * and key logins, host-key checks, every file operation, a 10 MB file both ways, many requests
 * on one connection, errors that keep the connection, a killed session that forces a
 * reconnect, and a burst that stays within sshd's default MaxStartups.
 */
import { execFileSync } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processRegistry, type Connection, type Context } from '../../../core/index.ts';
import { SftpHook, SftpPool, closeSftpPools, sftpGetTask, HostKeyMismatchError, fingerprint, resolveTarget, SFTP_STATUS } from '../../../providers/sftp/index.ts';
import { testSftpConnection } from '../../../providers/sftp/connection-test.ts';
import { startSshd, sshdAvailable, type Sshd } from '../../helpers/sshd.ts';
import { waitFor } from '../../helpers/pg.ts';
import { sample } from '../../helpers/metrics.ts';

const required = process.env.CI === 'true';
let sshd: Sshd;
let local: string;

const connOf = (extra: Record<string, unknown>, over: Partial<Connection> = {}): Connection => ({
  connId: `sftp_${Math.random().toString(36).slice(2, 8)}`, connType: 'sftp', description: null, host: '127.0.0.1', schema: null,
  login: sshd.user, password: null, port: sshd.port, extra: { host_key: sshd.hostKey, ...extra }, ...over,
} as Connection);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const remote = (p: string) => path.posix.join(sshd.root, p);

beforeAll(async () => {
  if (!sshdAvailable) {
    if (required) throw new Error('sshd is required in CI: .ci/run installs openssh-server');
    return;
  }
  sshd = await startSshd({ countOpens: true });
  local = mkdtempSync(path.join(os.tmpdir(), 'updraft-sftp-local-'));
  mkdirSync(path.join(sshd.root, 'in'));
  for (let i = 0; i < 40; i++) writeFileSync(path.join(sshd.root, 'in', `f${String(i).padStart(2, '0')}.xml`), `<doc n="${i}">${'x'.repeat(i * 50)}</doc>`);
  writeFileSync(path.join(sshd.root, 'in', 'readme.txt'), 'not xml');
  utimesSync(path.join(sshd.root, 'in', 'readme.txt'), new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
  mkdirSync(path.join(sshd.root, 'in', 'sub'));
  writeFileSync(path.join(sshd.root, 'in', 'sub', 'deep.xml'), '<deep/>');
  execChown(sshd.root);
});
afterAll(async () => {
  closeSftpPools();
  await sshd?.stop();
  if (local) rmSync(local, { recursive: true, force: true });
});

function execChown(dir: string): void {
  // The test writes as root; the SFTP user must own what it changes.
  execFileSync('chown', ['-R', `${sshd.user}:`, dir]);
}

describe.skipIf(!sshdAvailable && !required)('SftpHook on a real sshd', () => {
  it('logs in with a key and with a password, verifying the host key', async () => {
    const byKey = new SftpHook(connOf({ private_key: sshd.privateKey }));
    expect((await byKey.stat(remote('in/readme.txt'))).size).toBe(7);
    const byPassword = new SftpHook(connOf({}, { password: sshd.password }));
    expect(await byPassword.exists(remote('in/readme.txt'))).toBe(true);
    expect(await testSftpConnection(connOf({}, { password: sshd.password }), new AbortController().signal)).toMatchObject({ ok: true, message: expect.stringContaining('logged in to 127.0.0.1') });
  });

  it('refuses a host key it does not know, naming both fingerprints; no_host_key_check accepts it', async () => {
    const other = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
    const hook = new SftpHook(connOf({ private_key: sshd.privateKey, host_key: other }));
    const err = await hook.stat(remote('in/readme.txt')).catch((e) => e);
    expect(err).toBeInstanceOf(HostKeyMismatchError);
    expect(err.message).toContain(`127.0.0.1:${sshd.port}`);
    expect(err.message).toContain(`expected ${fingerprint(other.split(' ')[1])}`);
    expect(err.message).toContain(`offered ${fingerprint(sshd.hostKey.split(' ')[1])}`);
    expect(err.message).toMatch(/update the connection's host_key/);
    const tested = await testSftpConnection(connOf({ private_key: sshd.privateKey, host_key: other }), new AbortController().signal);
    expect(tested).toMatchObject({ ok: false, message: expect.stringContaining('host key mismatch') });
    // Nothing configured at all is refused too, with what to do.
    expect(() => resolveTarget(connOf({ private_key: sshd.privateKey, host_key: undefined }))).toThrow(/no host key to verify .* set the extra host_key/);
    const unchecked = new SftpHook(connOf({ private_key: sshd.privateKey, host_key: undefined, no_host_key_check: true }));
    expect(await unchecked.exists(remote('in/readme.txt'))).toBe(true);
  });

  it('reads the host key from a known_hosts file, hashed or not', async () => {
    const blob = sshd.hostKey.split(' ')[1];
    const plain = path.join(local, 'known_hosts');
    writeFileSync(plain, `# comment\nother.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n[127.0.0.1]:${sshd.port} ssh-ed25519 ${blob}\n`);
    expect(await new SftpHook(connOf({ private_key: sshd.privateKey, host_key: undefined, known_hosts: plain })).exists(remote('in'))).toBe(true);
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update(`[127.0.0.1]:${sshd.port}`).digest('base64');
    const hashed = path.join(local, 'known_hosts_hashed');
    writeFileSync(hashed, `|1|${salt.toString('base64')}|${hash} ssh-ed25519 ${blob}\n`);
    expect(await new SftpHook(connOf({ private_key: sshd.privateKey, host_key: undefined, known_hosts: hashed })).exists(remote('in'))).toBe(true);
  });

  it('lists with a pattern, newerThan and recursion; stats and checks existence', async () => {
    const hook = new SftpHook(connOf({ private_key: sshd.privateKey }));
    const xml = await hook.list(remote('in'), { pattern: '*.xml' });
    expect(xml).toHaveLength(40);
    expect(xml[0]).toEqual({ name: 'f00.xml', path: remote('in/f00.xml'), size: 17, mtime: expect.stringMatching(/^\d{4}-/), type: 'file' });
    expect((await hook.list(remote('in'))).map((f) => f.name)).toContain('sub');
    expect((await hook.list(remote('in'), { pattern: '**/*.xml', recursive: true })).map((f) => f.name)).toContain('deep.xml');
    const recent = await hook.list(remote('in'), { newerThan: '2021-01-01T00:00:00Z' });
    expect(recent.map((f) => f.name)).not.toContain('readme.txt');
    expect(recent).toHaveLength(40);
    expect((await hook.stat(remote('in/sub'))).type).toBe('directory');
    expect(await hook.exists(remote('in/nothing.xml'))).toBe(false);
  });

  it('puts, gets, renames, makes directories and deletes', async () => {
    const hook = new SftpHook(connOf({ private_key: sshd.privateKey }));
    await hook.put(Buffer.from('hello'), remote('out/a/b/c/one.txt'), { mkdirs: true });
    await hook.mkdir(remote('out/a/b')); // exists already: fine
    expect((await hook.get(remote('out/a/b/c/one.txt'))).toString()).toBe('hello');
    const src = path.join(local, 'two.txt');
    writeFileSync(src, 'from a local file');
    await hook.put(src, remote('out/two.txt'));
    await hook.rename(remote('out/two.txt'), remote('out/a/two.txt'));
    const dest = path.join(local, 'got', 'two.txt');
    expect(await hook.get(remote('out/a/two.txt'), dest)).toBe(17);
    expect(readFileSync(dest, 'utf8')).toBe('from a local file');
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    await hook.get(remote('out/a/two.txt'), sink);
    expect(Buffer.concat(chunks).toString()).toBe('from a local file');
    await expect(hook.delete(remote('out/a'))).rejects.toThrow(/rmdir/);
    await hook.delete(remote('out'), { recursive: true });
    expect(await hook.exists(remote('out'))).toBe(false);
  });

  it('moves a 10 MB file both ways with matching checksums', async () => {
    const hook = new SftpHook(connOf({ private_key: sshd.privateKey }));
    const big = randomBytes(10 * 1024 * 1024 + 123);
    const src = path.join(local, 'big.bin');
    writeFileSync(src, big);
    await hook.put(src, remote('big/big.bin'), { mkdirs: true });
    expect(sha(readFileSync(path.join(sshd.root, 'big', 'big.bin')))).toBe(sha(big));
    expect(sha(await hook.get(remote('big/big.bin')))).toBe(sha(big));
    const dest = path.join(local, 'big-back.bin');
    await hook.get(remote('big/big.bin'), dest);
    expect(sha(readFileSync(dest))).toBe(sha(big));
    await hook.put(big.subarray(0, 5 * 1024 * 1024), remote('big/half.bin'));
    expect(sha(await hook.get(remote('big/half.bin')))).toBe(sha(big.subarray(0, 5 * 1024 * 1024)));
  });

  it('lists a directory of 2,345 entries, many READDIR batches in flight, each name once', async () => {
    const big = path.join(sshd.root, 'many');
    mkdirSync(big);
    const names = Array.from({ length: 2345 }, (_, i) => `entry-${String(i).padStart(4, '0')}.dat`);
    for (const n of names) writeFileSync(path.join(big, n), n);
    execChown(big);
    const listed = await new SftpHook(connOf({ private_key: sshd.privateKey })).list(remote('many'));
    expect(listed.map((f) => f.name).sort()).toEqual(names);
    expect(listed.every((f) => f.size === f.name.length && f.type === 'file')).toBe(true);
  });

  it('carries 500 concurrent gets on one connection, with no listener warnings', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const hook = new SftpHook(connOf({ private_key: sshd.privateKey, max_connections: 1, max_in_flight: 64 }));
      const files = await hook.list(remote('in'), { pattern: '*.xml' });
      const all = await Promise.all(Array.from({ length: 500 }, (_, i) => hook.get(files[i % files.length].path)));
      expect(all.every((b, i) => b.toString() === readFileSync(path.join(sshd.root, 'in', files[i % files.length].name), 'utf8'))).toBe(true);
      expect(hook.stats()).toMatchObject({ connections: 1, opened: 1, dropped: 0, inFlight: 0 });
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map((w) => w.message)).toEqual([]);
  });

  it('keeps the connection after "no such file" and "permission denied"', async () => {
    const hook = new SftpHook(connOf({ private_key: sshd.privateKey, max_connections: 1 }));
    for (let i = 0; i < 20; i++) {
      const err = await hook.get(remote(`in/missing-${i}.xml`)).catch((e) => e);
      expect(err.code).toBe(SFTP_STATUS.NO_SUCH_FILE);
      expect(err.message).toContain('no such file');
    }
    const denied = await hook.put(Buffer.from('x'), '/root/not-yours.txt').catch((e) => e);
    expect(denied.code).toBe(SFTP_STATUS.PERMISSION_DENIED);
    expect((await hook.get(remote('in/f01.xml'))).length).toBeGreaterThan(0);
    expect(hook.stats()).toMatchObject({ opened: 1, dropped: 0 });
  });

  it('counts each operation by name and outcome in updraft_provider_requests_total', async () => {
    const count = async (operation: string, status: string) =>
      sample(await processRegistry.metrics(), 'updraft_provider_requests_total', { provider: 'sftp', operation, status }) ?? 0;
    const names = [['stat', 'ok'], ['stat', 'no_such_file'], ['list', 'ok'], ['get', 'ok'], ['put', 'permission_denied']] as const;
    const before = await Promise.all(names.map(([op, status]) => count(op, status)));
    const hook = new SftpHook(connOf({ private_key: sshd.privateKey }));
    await hook.stat(remote('in/readme.txt'));
    expect(await hook.exists(remote('in/nothing.txt'))).toBe(false);
    await hook.list(remote('in'), { pattern: '*.txt' });
    await hook.get(remote('in/readme.txt'));
    await expect(hook.put(Buffer.from('x'), '/root/not-yours.txt')).rejects.toMatchObject({ code: SFTP_STATUS.PERMISSION_DENIED });
    const after = await Promise.all(names.map(([op, status]) => count(op, status)));
    expect(after.map((n, i) => n - before[i])).toEqual([1, 1, 1, 1, 1]);
  });

  it('reconnects when the server-side session is killed', async () => {
    const hook = new SftpHook(connOf({ private_key: sshd.privateKey, max_connections: 1 }));
    await hook.get(remote('in/f02.xml'));
    const before = sshd.sessionPids();
    expect(before.length).toBeGreaterThan(0);
    // Kill every session process: this hook's connection goes with them.
    for (const pid of before) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already: a session's processes end together.
      }
    }
    const files = await Promise.all(Array.from({ length: 10 }, () => hook.get(remote('in/f03.xml'))));
    expect(files.every((b) => b.toString().startsWith('<doc n="3">'))).toBe(true);
    expect(hook.stats().opened).toBe(2);
    expect(hook.stats().dropped).toBe(1);
  });

  it('a burst of 2,000 gets through a fresh pool stays within sshd\'s default MaxStartups', async () => {
    // Four pools (four "processes") start at once against the default 10:30:100.
    const loginsBefore = sshd.acceptedLogins();
    const hooks = Array.from({ length: 4 }, () => new SftpHook(connOf({ private_key: sshd.privateKey })));
    const files = await hooks[0].list(remote('in'), { pattern: '*.xml' });
    let done = 0;
    await Promise.all(hooks.map(async (h) => {
      for await (const r of h.download(Array.from({ length: 500 }, (_, i) => files[i % files.length]), { to: (_f, data) => data.length })) {
        expect(r.error).toBeUndefined();
        done++;
      }
    }));
    expect(done).toBe(2000);
    for (const h of hooks) expect(h.stats().opened).toBeLessThanOrEqual(4);
    expect(sshd.acceptedLogins() - loginsBefore).toBeLessThanOrEqual(16 + 1);
    expect(readFileSync(sshd.logFile, 'utf8')).not.toMatch(/drop connection|beginning MaxStartups throttling/);
  });

  it('downloads with a sliding window and writes every file to a directory', async () => {
    const hook = new SftpHook(connOf({ private_key: sshd.privateKey }));
    const files = await hook.list(remote('in'), { pattern: '*.xml' });
    const to = path.join(local, 'dl');
    const results = [];
    for await (const r of hook.download(files, { to, concurrency: 8 })) results.push(r);
    expect(results).toHaveLength(40);
    for (const r of results) expect(readFileSync(r.localPath!, 'utf8')).toBe(readFileSync(path.join(sshd.root, 'in', path.basename(r.file.path)), 'utf8'));
    const failing = hook.download([remote('in/f00.xml'), remote('in/gone.xml')], { to, tolerateFailures: true });
    const outcomes = [];
    for await (const r of failing) outcomes.push(r);
    expect(outcomes.find((o) => o.error)?.error?.message).toContain('gone.xml: no such file');
    await expect((async () => { for await (const _ of hook.download([remote('in/gone.xml')], { to })) { /* throws */ } })()).rejects.toThrow(/no such file/);
  });

  it('sftpGetTask writes the remote mtime; a retried try skips a file already whole on disk, and fetches a changed one', async () => {
    const conn = connOf({ private_key: sshd.privateKey });
    const hook = new SftpHook(conn);
    const [file] = await hook.list(remote('in'), { pattern: 'f07.xml' });
    const to = path.join(local, 'quick');
    const get = sftpGetTask('get', { connId: conn.connId, to });
    const before = sshd.openCounts().get(file.path) ?? 0;
    const opens = () => (sshd.openCounts().get(file.path) ?? 0) - before;
    // sftp-server logs an open before it answers it; the wait only covers a slow log write.
    const opened = async (n: number) => {
      await waitFor(() => opens() >= n, `${n} open(s) of ${file.path} in the server's log`, 10_000);
      expect(opens()).toBe(n);
    };
    const ctx = (tryNumber: number) => ({ tryNumber, connection: async () => conn, signal: new AbortController().signal, log: undefined }) as unknown as Context;
    const first = await get.fn({ file }, ctx(1));
    expect(statSync(first.localPath).mtimeMs).toBe(Date.parse(file.mtime));
    await opened(1);
    // Try 2 finds the same file whole: no fetch.
    expect(await get.fn({ file }, ctx(2))).toEqual(first);
    expect(opens()).toBe(1);
    // A cut-off write (shorter than the remote file) and a file changed on the server are fetched again.
    writeFileSync(first.localPath, 'partial');
    await get.fn({ file }, ctx(2));
    await opened(2);
    const changed = { ...file, mtime: new Date(Date.parse(file.mtime) + 60_000).toISOString() };
    await get.fn({ file: changed }, ctx(3));
    await opened(3);
    expect(readFileSync(first.localPath)).toEqual(readFileSync(path.join(sshd.root, 'in', 'f07.xml')));
    // Try 1 never trusts what is on disk.
    await get.fn({ file }, ctx(1));
    await opened(4);
  });

  it('a pool opens connections only when the open ones are full', () => {
    const pool = new SftpPool('k', resolveTarget(connOf({ private_key: sshd.privateKey })));
    expect(pool.maxConnections).toBe(4);
    expect(pool.maxInFlight).toBe(64);
    expect(pool.stats()).toMatchObject({ connections: 0, opening: 0 });
    pool.close();
  });
});
