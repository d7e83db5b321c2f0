/**
 * A private, throwaway PostgreSQL cluster for fault tests that must stop or restart the
 * database, which the shared server at 127.0.0.1:5432 must never suffer. Each cluster lives in
 * its own temp directory (data, unix socket, server log) on its own free port with trust auth,
 * driven by the installed `initdb` and `pg_ctl`; as root they run as the `postgres` user via
 * `runuser`, since PostgreSQL refuses to run as root. `stop()` removes everything it created.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { freePort } from './ports.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const asRoot = process.getuid?.() === 0;

/** The newest installed server's bin dir, e.g. /usr/lib/postgresql/16/bin (or null). */
function findBinDir(): string | null {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  return versions.length ? join(base, versions[0], 'bin') : null;
}

function findRunuser(): string | null {
  return ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser', '/bin/runuser'].find((p) => existsSync(p)) ?? null;
}

const BIN_DIR = findBinDir();
const RUNUSER = asRoot ? findRunuser() : null;

export const privatePgAvailable: boolean = BIN_DIR !== null && (!asRoot || RUNUSER !== null);
if (!privatePgAvailable && process.env.UPDRAFT_REQUIRE_PG) {
  // CI installs the server binaries (.ci/run); there the restart suite must not be skipped.
  throw new Error('initdb/pg_ctl (under /usr/lib/postgresql/<version>/bin) or runuser not found, and UPDRAFT_REQUIRE_PG is set');
}

/** Clusters not yet stopped; a crashed test file must not leave servers behind. */
const live = new Set<PrivatePg>();
process.once('exit', () => {
  for (const pg of live) pg.killSync();
});

/** A port that was free a moment ago (the OS picks it; we close and hand it on). */

export class PrivatePg {
  readonly url: string;
  private readonly dataDir: string;
  private readonly logFile: string;

  private constructor(
    /** The temp directory holding data/, the unix socket and server.log. */
    readonly dir: string,
    readonly port: number,
  ) {
    this.dataDir = join(dir, 'data');
    this.logFile = join(dir, 'server.log');
    this.url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  }

  static async start(opts: { name?: string } = {}): Promise<PrivatePg> {
    if (!privatePgAvailable) {
      throw new Error(`PrivatePg: no usable PostgreSQL install (initdb under /usr/lib/postgresql/*/bin${asRoot ? ', and runuser as root' : ''})`);
    }
    const name = (opts.name ?? 'pg').replace(/[^A-Za-z0-9_-]/g, '_');
    const dir = await mkdtemp(join(tmpdir(), `updraft-${name}-`));
    // mkdtemp makes it 0700; as root the server user must own it (and it must be traversable).
    await chmod(dir, 0o755);
    if (asRoot) await run('chown', ['-R', 'postgres:postgres', dir]);
    let pg = new PrivatePg(dir, await freePort());
    try {
      await pg.exec('initdb', ['-D', pg.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '--no-locale', '-E', 'UTF8'], 'initdb');
      // The port can be taken between freePort() and the bind; try a fresh one a few times.
      for (let attempt = 1; ; attempt++) {
        try {
          await pg.pgStart();
          break;
        } catch (err) {
          if (attempt >= 3 || !/could not bind|Address already in use/i.test(pg.logTail())) throw err;
          pg = new PrivatePg(dir, await freePort());
        }
      }
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    live.add(pg);
    return pg;
  }

  /**
   * Fast shutdown (every client connection is terminated, as in a real restart), `downMs` with
   * no server at all, then start again on the same port and data dir, ready for connections.
   */
  async restart(opts: { downMs?: number } = {}): Promise<void> {
    await this.exec('pg_ctl', ['-D', this.dataDir, '-m', 'fast', '-w', '-t', '60', 'stop'], 'pg_ctl stop (restart)');
    if (opts.downMs) await new Promise((r) => setTimeout(r, opts.downMs));
    await this.pgStart();
  }

  /** Stop the server and remove its directory. Safe to call twice. */
  async stop(): Promise<void> {
    if (!existsSync(this.dir)) return;
    live.delete(this);
    try {
      if (existsSync(join(this.dataDir, 'postmaster.pid'))) {
        await this.exec('pg_ctl', ['-D', this.dataDir, '-m', 'fast', '-w', '-t', '60', 'stop'], 'pg_ctl stop');
      }
    } finally {
      await rm(this.dir, { recursive: true, force: true });
    }
  }

  /** Last lines of the server log, for error messages. */
  logTail(lines = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no server log)';
    }
  }

  /** @internal Process-exit safety net: immediate stop and removal, synchronously. */
  killSync(): void {
    try {
      const [cmd, args] = this.command('pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', 'stop']);
      execFileSync(cmd, args, { cwd: this.dir, stdio: 'ignore', timeout: 10_000 });
    } catch { /* already down */ }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private pgStart(): Promise<void> {
    // The socket lives beside data/ so nothing touches the system's /var/run/postgresql.
    const settings = [
      `-p ${this.port}`, '-c listen_addresses=127.0.0.1', `-c unix_socket_directories='${this.dir}'`,
      '-c fsync=off', '-c max_connections=200',
    ].join(' ');
    return this.exec('pg_ctl', ['-D', this.dataDir, '-l', this.logFile, '-o', settings, '-w', '-t', '60', 'start'], `pg_ctl start on port ${this.port}`);
  }

  private command(bin: string, args: string[]): [string, string[]] {
    const path = join(BIN_DIR!, bin);
    return asRoot ? [RUNUSER!, ['-u', 'postgres', '--', path, ...args]] : [path, args];
  }

  private async exec(bin: string, args: string[], what: string): Promise<void> {
    const [cmd, argv] = this.command(bin, args);
    try {
      // cwd inside our dir: as `postgres` the caller's cwd may not be readable.
      await run(cmd, argv, { cwd: this.dir, timeout: 90_000 });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      const output = `${e.stderr ?? ''}${e.stdout ?? ''}`.trim() || e.message;
      throw new Error(`PrivatePg ${what} failed in ${this.dir}: ${output}\n--- server log tail (${this.logFile}) ---\n${this.logTail()}`, { cause: err });
    }
  }
}
