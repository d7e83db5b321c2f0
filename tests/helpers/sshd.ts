/**
 * A real OpenSSH sshd on a loopback port, with its own config, host key, client key,
 * `authorized_keys` and `Subsystem sftp internal-sftp`, for the SFTP suites and the
 * bench. One per test file: `startSshd()` in beforeAll, `stop()` in afterAll.
 *
 * Logins go to a dedicated system user (`updraft-sftp`, created once with a password) whose
 * files live under `root`. sshd logs at VERBOSE to a file, so a test can count handshakes
 * (`acceptedLogins()`); with `countOpens` it serves SFTP through a logging `sftp-server`, so a
 * test can count opens per path (`opens()`).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.ts';

export const SSHD_BIN = ['/usr/sbin/sshd', '/usr/local/sbin/sshd'].find((p) => existsSync(p)) ?? null;
export const sshdAvailable = SSHD_BIN !== null && process.getuid?.() === 0;
export const SFTP_USER = 'updraft-sftp';
export const SFTP_PASSWORD = 'sftp-test-Pa55:/@%?#';

export interface Sshd {
  readonly port: number;
  /** The directory the user's files live in (absolute; SFTP paths are the same). */
  readonly root: string;
  readonly user: string;
  readonly password: string;
  /** The client's private key (OpenSSH PEM) and the server's public host key line. */
  readonly privateKey: string;
  readonly hostKey: string;
  readonly logFile: string;
  /** Successful authentications so far (one per SSH connection). */
  acceptedLogins(): number;
  /** SFTP opens of `file` (absolute path) so far, from internal-sftp's log. */
  opens(file?: string): number;
  /** Every opened path with its count. */
  openCounts(): Map<string, number>;
  /** Per-connection sshd processes (every descendant of the listener). */
  sessionPids(): number[];
  stop(): Promise<void>;
}


function ensureUser(): void {
  try {
    execFileSync('id', [SFTP_USER], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['--no-create-home', '--home-dir', '/nonexistent', '--shell', '/bin/sh', SFTP_USER], { stdio: 'pipe' });
  }
  execFileSync('chpasswd', { input: `${SFTP_USER}:${SFTP_PASSWORD}\n`, stdio: ['pipe', 'ignore', 'pipe'] });
  // Privilege separation: sshd refuses to start without its directory and user.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  chmodSync('/run/sshd', 0o755);
  try {
    execFileSync('id', ['sshd'], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['--system', '--no-create-home', '--home-dir', '/run/sshd', '--shell', '/usr/sbin/nologin', 'sshd'], { stdio: 'pipe' });
  }
}

export interface SshdOptions {
  maxStartups?: string;
  maxSessions?: number;
  /**
   * Serve SFTP through OpenSSH's `sftp-server` logging each open (for `opens()`), instead of
   * `internal-sftp`, whose log lines never reach sshd's `-E` file.
   */
  countOpens?: boolean;
}

const SFTP_SERVER = ['/usr/lib/openssh/sftp-server', '/usr/libexec/openssh/sftp-server', '/usr/libexec/sftp-server'].find((p) => existsSync(p)) ?? null;

export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  if (!SSHD_BIN) throw new Error('sshd is not installed: apt-get install openssh-server');
  ensureUser();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'updraft-sshd-'));
  chmodSync(dir, 0o755);
  const root = path.join(dir, 'files');
  mkdirSync(root);
  const uid = Number(execFileSync('id', ['-u', SFTP_USER]).toString().trim());
  const gid = Number(execFileSync('id', ['-g', SFTP_USER]).toString().trim());
  execFileSync('chown', [`${uid}:${gid}`, root]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'updraft-test', '-f', path.join(dir, 'client_key')]);
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(path.join(dir, 'client_key.pub')));
  const port = await freePort();
  const logFile = path.join(dir, 'sshd.log');
  const sftpLog = path.join(dir, 'sftp.log');
  let subsystem = 'internal-sftp';
  if (opts.countOpens) {
    if (!SFTP_SERVER) throw new Error('countOpens needs OpenSSH\'s sftp-server binary');
    writeFileSync(sftpLog, '');
    chmodSync(sftpLog, 0o666);
    const wrapper = path.join(dir, 'sftp-logged');
    writeFileSync(wrapper, `#!/bin/sh\nexec ${SFTP_SERVER} -e -l INFO 2>>${sftpLog}\n`);
    chmodSync(wrapper, 0o755);
    subsystem = wrapper;
  }
  const config = [
    `Port ${port}`, 'ListenAddress 127.0.0.1',
    `HostKey ${path.join(dir, 'host_key')}`, `PidFile ${path.join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`, 'StrictModes no',
    'PasswordAuthentication yes', 'KbdInteractiveAuthentication no', 'PubkeyAuthentication yes', 'UsePAM no',
    'PermitRootLogin no', `AllowUsers ${SFTP_USER}`, 'LogLevel VERBOSE', 'UseDNS no',
    `MaxStartups ${opts.maxStartups ?? '10:30:100'}`, `MaxSessions ${opts.maxSessions ?? 10}`,
    `Subsystem sftp ${subsystem}`,
  ];
  writeFileSync(path.join(dir, 'sshd_config'), `${config.join('\n')}\n`);
  const child: ChildProcess = spawn(SSHD_BIN, ['-D', '-e', '-f', path.join(dir, 'sshd_config'), '-E', logFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Listening once a TCP connect succeeds; a config error exits at once with a message.
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`sshd exited at start (${child.exitCode}): ${stderr}${existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''}`);
    if (await canConnect(port)) break;
    if (Date.now() > deadline) throw new Error(`sshd did not listen on 127.0.0.1:${port} within 20 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const openCounts = () => {
    if (!opts.countOpens) throw new Error('start sshd with { countOpens: true } to count opens');
    const counts = new Map<string, number>();
    for (const m of readFileSync(sftpLog, 'utf8').matchAll(/open "([^"]+)" flags/g)) counts.set(m[1], (counts.get(m[1]) ?? 0) + 1);
    return counts;
  };
  const childrenOf = (pid: number): number[] => {
    try {
      return execFileSync('pgrep', ['-P', String(pid)]).toString().trim().split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  // Every process below the listener: each connection's monitor and its user process.
  const sessionPids = () => {
    const out: number[] = [];
    for (let level = childrenOf(child.pid!); level.length; level = level.flatMap(childrenOf)) out.push(...level);
    return out;
  };
  return {
    port, root, user: SFTP_USER, password: SFTP_PASSWORD, logFile,
    privateKey: readFileSync(path.join(dir, 'client_key'), 'utf8'),
    hostKey: readFileSync(path.join(dir, 'host_key.pub'), 'utf8').trim(),
    acceptedLogins: () => (log().match(/Accepted (publickey|password) for /g) ?? []).length,
    opens: (file) => (file ? openCounts().get(file) ?? 0 : [...openCounts().values()].reduce((a, b) => a + b, 0)),
    openCounts,
    sessionPids,
    async stop() {
      if (child.exitCode === null) {
        // Session processes outlive the listener; end them too.
        const sessions = sessionPids();
        child.kill('SIGTERM');
        for (const pid of sessions) try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}
