/**
 * The SFTP connection pool: one per connection (conn id and settings) and process, shared by
 * every async task of a worker and every trigger of the triggerer.
 *
 * Few connections, many requests: at most `max_connections` SSH connections, each with ONE
 * long-lived SFTP channel that carries up to `max_in_flight` operations at once (ssh2 matches
 * replies to requests by id). A new connection opens only when every open one is full, at most
 * two handshakes at once per server (OpenSSH's MaxStartups drops unauthenticated bursts), with
 * retries and jitter. Every socket has Nagle off. A connection is dropped only on a
 * connection-level failure (reset, timeout, channel closed); an SFTP status such as "no such
 * file" or "permission denied" leaves it in use. Idle connections close after `idle_timeout`
 * and never keep the process alive.
 */
import { createHash } from 'node:crypto';
import { connect as tcpConnect, type Socket } from 'node:net';
import { Client, type SFTPWrapper } from 'ssh2';
import { semaphore, type Semaphore, type TaskLogger } from 'updraft';
import { hostVerifier, HostKeyMismatchError, type SshTarget } from './connection.ts';

/** SFTP status codes (draft-ietf-secsh-filexfer-02). */
export const SFTP_STATUS = { EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, BAD_MESSAGE: 5, NO_CONNECTION: 6, CONNECTION_LOST: 7, OP_UNSUPPORTED: 8 } as const;

const HANDSHAKES_PER_SERVER = 2;
const CONNECT_ATTEMPTS = 4;
const quiet: TaskLogger = { info() {}, warn() {}, error() {}, debug() {} };

/** A failure of the connection itself, as opposed to an SFTP status on a healthy channel. */
export class SftpConnectionError extends Error {
  override readonly name = 'SftpConnectionError';
  readonly retryable = true;
}

/** Whether `err` means the connection it happened on is unusable. */
export function isConnectionLevel(err: unknown): boolean {
  if (err instanceof SftpConnectionError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'number') return code === SFTP_STATUS.NO_CONNECTION || code === SFTP_STATUS.CONNECTION_LOST;
  return !(err instanceof HostKeyMismatchError) && !((err as { name?: unknown })?.name === 'AbortError');
}

class SshConnection {
  inFlight = 0;
  dead = false;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(readonly id: number, readonly client: Client, readonly sftp: SFTPWrapper, readonly socket: Socket, private readonly onIdle: (c: SshConnection) => void, private readonly idleMs: number) {
    this.markIdle();
  }

  take(): void {
    if (this.inFlight++ === 0) {
      clearTimeout(this.idleTimer);
      this.socket.ref();
    }
  }

  give(): void {
    if (--this.inFlight === 0) this.markIdle();
  }

  private markIdle(): void {
    // An idle connection must not keep a stopping process alive.
    this.socket.unref();
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.onIdle(this), this.idleMs);
    this.idleTimer.unref();
  }

  close(): void {
    clearTimeout(this.idleTimer);
    this.dead = true;
    this.client.end();
    // A peer that never answers the disconnect must not hold the socket.
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }
}

interface Waiter {
  resolve: (c: SshConnection) => void;
  reject: (err: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

const handshakeLimits = new Map<string, Semaphore>();

export interface PoolStats {
  connections: number;
  opening: number;
  inFlight: number;
  waiting: number;
  /** Connections opened over the pool's life (handshakes that succeeded). */
  opened: number;
  /** Connections dropped after a connection-level failure. */
  dropped: number;
}

export class SftpPool {
  private readonly conns: SshConnection[] = [];
  private readonly waiters: Waiter[] = [];
  private opening = 0;
  private opened = 0;
  private dropped = 0;
  private nextId = 1;
  private closed = false;
  log: TaskLogger = quiet;

  constructor(readonly key: string, readonly target: SshTarget) {}

  get isClosed(): boolean { return this.closed; }
  get maxConnections(): number { return this.target.extra.max_connections; }
  get maxInFlight(): number { return this.target.extra.max_in_flight; }

  stats(): PoolStats {
    return {
      connections: this.conns.length, opening: this.opening, inFlight: this.conns.reduce((n, c) => n + c.inFlight, 0),
      waiting: this.waiters.length, opened: this.opened, dropped: this.dropped,
    };
  }

  /**
   * Run `op` on a pooled channel, holding one of its in-flight places. A connection-level
   * failure drops that connection and runs `op` again on another, up to `retries` times.
   */
  async run<T>(op: (sftp: SFTPWrapper) => Promise<T>, signal?: AbortSignal, retries = 2): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const conn = await this.acquire(signal);
      try {
        return await op(conn.sftp);
      } catch (err) {
        if (!isConnectionLevel(err) && !conn.dead) throw err;
        this.drop(conn, err);
        if (attempt >= retries || signal?.aborted) throw err instanceof SftpConnectionError ? err : new SftpConnectionError(`SFTP connection to ${this.where()} failed: ${(err as Error).message}`, { cause: err });
        this.log.warn('SFTP connection to %s failed (%s); retrying on another connection', this.where(), (err as Error).message);
      } finally {
        this.release(conn);
      }
    }
  }

  private where(): string {
    return `${this.target.username}@${this.target.host}:${this.target.port}`;
  }

  private acquire(signal?: AbortSignal): Promise<SshConnection> {
    if (this.closed) return Promise.reject(new SftpConnectionError(`the SFTP pool for "${this.target.connId}" is closed`));
    signal?.throwIfAborted();
    const conn = this.leastBusy();
    if (conn) {
      conn.take();
      return Promise.resolve(conn);
    }
    return new Promise<SshConnection>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
      this.grow();
    });
  }

  private leastBusy(): SshConnection | null {
    let best: SshConnection | null = null;
    for (const c of this.conns) if (!c.dead && c.inFlight < this.maxInFlight && (!best || c.inFlight < best.inFlight)) best = c;
    return best;
  }

  private release(conn: SshConnection): void {
    conn.give();
    this.dispatch();
  }

  /** Hand free places to waiters in arrival order; open connections for the rest. */
  private dispatch(): void {
    while (this.waiters.length) {
      const conn = this.leastBusy();
      if (!conn) break;
      const w = this.waiters.shift()!;
      if (w.onAbort) w.signal!.removeEventListener('abort', w.onAbort);
      conn.take();
      w.resolve(conn);
    }
    if (this.waiters.length) this.grow();
  }

  /** Open connections while waiters need more places than the ones opening will bring. */
  private grow(): void {
    while (!this.closed && this.conns.length + this.opening < this.maxConnections
      && this.waiters.length > this.opening * this.maxInFlight) {
      this.opening++;
      void this.open().then((conn) => {
        this.opening--;
        this.conns.push(conn);
        this.opened++;
        this.dispatch();
      }, (err) => {
        this.opening--;
        // With no connection left to wait for, the waiters get the reason.
        if (!this.conns.some((c) => !c.dead) && !this.opening) {
          for (const w of this.waiters.splice(0)) {
            if (w.onAbort) w.signal!.removeEventListener('abort', w.onAbort);
            w.reject(err);
          }
        }
      });
    }
  }

  private async open(): Promise<SshConnection> {
    const serverKey = `${this.target.host}:${this.target.port}`;
    let limit = handshakeLimits.get(serverKey);
    if (!limit) handshakeLimits.set(serverKey, limit = semaphore(HANDSHAKES_PER_SERVER));
    let lastError: unknown;
    for (let attempt = 1; attempt <= CONNECT_ATTEMPTS; attempt++) {
      const release = await limit.acquire();
      try {
        return await this.handshake();
      } catch (err) {
        lastError = err;
      } finally {
        release();
      }
      const message = (lastError as Error).message;
      if (lastError instanceof HostKeyMismatchError || /authentication methods failed/i.test(message)) throw lastError;
      if (attempt === CONNECT_ATTEMPTS || this.closed) break;
      const delay = Math.random() * 250 * 2 ** attempt; // full jitter
      this.log.warn('SSH connection to %s failed (attempt %d of %d: %s); retrying in %d ms', this.where(), attempt, CONNECT_ATTEMPTS, message, Math.round(delay));
      await new Promise((r) => setTimeout(r, delay));
    }
    throw new SftpConnectionError(`cannot connect to ${this.where()} (connection "${this.target.connId}") after ${CONNECT_ATTEMPTS} attempts: ${(lastError as Error).message}`, { cause: lastError });
  }

  private handshake(): Promise<SshConnection> {
    const t = this.target;
    return new Promise<SshConnection>((resolve, reject) => {
      let settled = false;
      let mismatch: HostKeyMismatchError | null = null;
      const socket = tcpConnect({ host: t.host, port: t.port, noDelay: true });
      socket.setNoDelay(true);
      const client = new Client();
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        socket.destroy();
        reject(mismatch ?? err);
      };
      // ssh2 may emit 'error' more than once (socket, then protocol): always listen, never crash.
      client.on('error', fail);
      socket.on('error', fail);
      client.once('close', () => fail(new SftpConnectionError(`the connection to ${this.where()} closed during the handshake`)));
      client.once('ready', () => {
        client.sftp((err, sftp) => {
          if (err) return fail(err);
          if (settled) return;
          settled = true;
          client.removeListener('error', fail);
          socket.removeListener('error', fail);
          const conn = new SshConnection(this.nextId++, client, sftp, socket, (c) => this.closeIdle(c), t.extra.idle_timeout * 1000);
          const lost = (why: string) => () => {
            if (conn.dead) return;
            conn.dead = true;
            this.drop(conn, new SftpConnectionError(why));
          };
          client.on('error', (e) => lost(`connection error: ${e.message}`)());
          socket.on('error', (e) => lost(`socket error: ${e.message}`)());
          sftp.on('error', (e: Error) => lost(`SFTP channel error: ${e.message}`)());
          client.once('close', lost('connection closed'));
          sftp.once('close', lost('SFTP channel closed'));
          resolve(conn);
        });
      });
      client.connect({
        sock: socket, username: t.username, password: t.password, privateKey: t.privateKey, passphrase: t.passphrase,
        readyTimeout: t.extra.conn_timeout * 1000,
        keepaliveInterval: t.extra.keepalive_interval * 1000, keepaliveCountMax: 3,
        hostVerifier: hostVerifier(t, (e) => { mismatch = e; }),
      });
    });
  }

  private drop(conn: SshConnection, why: unknown): void {
    const i = this.conns.indexOf(conn);
    if (i < 0) return;
    this.conns.splice(i, 1);
    this.dropped++;
    this.log.warn('dropping SFTP connection #%d to %s: %s', conn.id, this.where(), (why as Error)?.message ?? String(why));
    conn.close();
    // Other operations on it fail on their own and retry; waiters need a place elsewhere.
    this.dispatch();
  }

  private closeIdle(conn: SshConnection): void {
    if (conn.inFlight) return;
    const i = this.conns.indexOf(conn);
    if (i >= 0) this.conns.splice(i, 1);
    conn.close();
  }

  /** Close every connection; waiting operations fail. */
  close(): void {
    this.closed = true;
    for (const c of this.conns.splice(0)) c.close();
    for (const w of this.waiters.splice(0)) w.reject(new SftpConnectionError(`the SFTP pool for "${this.target.connId}" was closed`));
  }
}

const pools = new Map<string, SftpPool>();

/** The process's pool for a target; the same settings share one. */
export function poolFor(target: SshTarget): SftpPool {
  const key = createHash('sha256').update(JSON.stringify([target.connId, target.host, target.port, target.username, target.extra, target.knownKeys, target.password ?? '', String(target.privateKey ?? '')])).digest('hex');
  let pool = pools.get(key);
  if (!pool) pools.set(key, pool = new SftpPool(key, target));
  return pool;
}

/** Close every pool of this process (tests, shutdown). */
export function closeSftpPools(): void {
  for (const p of pools.values()) p.close();
  pools.clear();
}
