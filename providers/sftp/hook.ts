/**
 * SftpHook: files on one `sftp` connection through the process's shared pool (few SSH
 * connections, many requests in flight on each). Every method takes an AbortSignal; by default
 * the task's `ctx.signal` or the trigger's runtime signal.
 *
 *   const sftp = await SftpHook.create(ctx, 'partner');          // in a task
 *   const files = await sftp.list('/outbox', { pattern: '*.xml' });
 *   for await (const r of sftp.download(files, { to: '/data/in' })) …
 */
import { mkdir, readFile, stat as localStat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import picomatch from 'picomatch';
import type { FileEntryWithStats, SFTPWrapper, Stats } from 'ssh2';
import { anySignal, countProviderRequest, type Connection, type TaskLogger } from 'updraft';
import { resolveTarget, SFTP_DEFAULT_CONN_ID } from './connection.ts';
import { poolFor, SFTP_STATUS, type PoolStats, type SftpPool } from './pool.ts';
import { mkdirOne, readWhole, readdir, rename, rmdirOne, stat, unlink, writeWhole } from './ops.ts';

/** Above this size, transfers stream in parallel chunks instead of going through one buffer. */
export const LARGE_FILE_BYTES = 8 * 1024 * 1024;

export type SftpFileType = 'file' | 'directory' | 'symlink' | 'other';

/** A remote file as `list` and `stat` describe it; plain JSON, so it can travel in XComs and events. */
export interface SftpFile {
  name: string;
  path: string;
  size: number;
  /** Modification time, ISO 8601 (SFTP carries whole seconds). */
  mtime: string;
  type: SftpFileType;
}

export interface ListOptions {
  /** A glob on the path below the listed directory (`*.xml`, `**\/*.csv` with recursive). */
  pattern?: string;
  /** Only files modified after this moment. */
  newerThan?: Date | string | number;
  recursive?: boolean;
  /** Include directories in the result (default: files only when a pattern or newerThan is given). */
  includeDirectories?: boolean;
  signal?: AbortSignal;
}

export interface DownloadResult {
  file: SftpFile | { path: string; size?: number };
  bytes: number;
  /** Where it was written, with `to: dir`. */
  localPath?: string;
  /** The handler's return value, with `to: handler`. */
  value?: unknown;
  error?: Error;
}

export interface DownloadOptions {
  /** A local directory (files keep their names), or a handler that receives each file's bytes. */
  to: string | ((file: SftpFile | { path: string; size?: number }, data: Buffer) => unknown);
  /** Files in flight; default the pool's capacity (max_connections × max_in_flight). */
  concurrency?: number;
  /** Attempts again after a connection-level failure, per file (default 2). */
  retries?: number;
  /** Yield failures as results instead of throwing the first (default false). */
  tolerateFailures?: boolean;
  signal?: AbortSignal;
}

export interface SftpHookSource {
  connection(connId: string): Promise<Connection>;
  readonly log?: TaskLogger;
  readonly signal?: AbortSignal;
}

const TYPE_MASK = 0o170000;
function typeOf(mode: number): SftpFileType {
  switch (mode & TYPE_MASK) {
    case 0o100000: return 'file';
    case 0o040000: return 'directory';
    case 0o120000: return 'symlink';
    default: return 'other';
  }
}

function describe(p: string, st: Stats | FileEntryWithStats['attrs']): SftpFile {
  return { name: path.posix.basename(p), path: p, size: Number(st.size ?? 0), mtime: new Date((st.mtime ?? 0) * 1000).toISOString(), type: typeOf(st.mode ?? 0) };
}

function newerThanMs(v: ListOptions['newerThan']): number | null {
  if (v === undefined || v === null) return null;
  const ms = v instanceof Date ? v.getTime() : typeof v === 'number' ? v : Date.parse(v);
  if (Number.isNaN(ms)) throw new Error(`newerThan: "${String(v)}" is not a date; give a Date, epoch milliseconds or an ISO 8601 string`);
  return ms;
}

const STATUS_NAMES = new Map<unknown, string>(Object.entries(SFTP_STATUS).map(([name, code]) => [code, name.toLowerCase()]));

/** A failed operation's outcome for the request count: the SFTP status (no_such_file…), aborted, or error. */
function statusName(err: unknown): string {
  if ((err as { name?: unknown } | null)?.name === 'AbortError') return 'aborted';
  return STATUS_NAMES.get((err as { code?: unknown } | null)?.code) ?? 'error';
}

/** An SFTP status as an Error that names the operation and path. */
function withPath(err: unknown, op: string, p: string): Error {
  const e = err as { code?: unknown; message?: string };
  const what = e.code === SFTP_STATUS.NO_SUCH_FILE ? 'no such file' : e.code === SFTP_STATUS.PERMISSION_DENIED ? 'permission denied' : e.message;
  const out = new Error(`SFTP ${op} ${p}: ${what}`, { cause: err });
  (out as Error & { code?: unknown }).code = e.code;
  return out;
}

/**
 * Pools by the connection object looked up: the secrets lookup hands out the same object while
 * it is cached, so a hook made per TI (thousands a second in a mapped download) skips the
 * options' parse and the pool key's hash.
 */
const poolsByConnection = new WeakMap<Connection, SftpPool>();

function pooled(conn: Connection): SftpPool {
  const known = poolsByConnection.get(conn);
  if (known && !known.isClosed) return known;
  const pool = poolFor(resolveTarget(conn));
  poolsByConnection.set(conn, pool);
  return pool;
}

export class SftpHook {
  readonly pool: SftpPool;

  constructor(readonly conn: Connection, private readonly options: { log?: TaskLogger; signal?: AbortSignal } = {}) {
    this.pool = pooled(conn);
    if (options.log) this.pool.log = options.log;
  }

  /** A hook for a task (`ctx`) or a trigger (`this.runtime`): its connection lookup, log and signal. */
  static async create(source: SftpHookSource, connId = SFTP_DEFAULT_CONN_ID): Promise<SftpHook> {
    return new SftpHook(await source.connection(connId), { log: source.log, signal: source.signal });
  }

  stats(): PoolStats {
    return this.pool.stats();
  }

  private signal(own?: AbortSignal): AbortSignal | undefined {
    return anySignal(own, this.options.signal);
  }

  /**
   * Run on a pooled channel; rejects as soon as the signal aborts (the reply, if any, is dropped).
   * `operation` names it in the provider request count, with its outcome (ok, an SFTP status, error).
   */
  private run<T>(operation: string, op: (sftp: SFTPWrapper) => Promise<T>, signal?: AbortSignal, retries?: number): Promise<T> {
    const s = this.signal(signal);
    const work = this.pool.run(op, s, retries);
    work.then(() => countProviderRequest('sftp', operation, 'ok'), (err: unknown) => countProviderRequest('sftp', operation, statusName(err)));
    if (!s) return work;
    s.throwIfAborted();
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(s.reason);
      s.addEventListener('abort', onAbort, { once: true });
      work.then(resolve, reject).finally(() => s.removeEventListener('abort', onAbort));
    });
  }

  async stat(p: string, opts: { signal?: AbortSignal } = {}): Promise<SftpFile> {
    return this.run('stat', async (sftp) => describe(p, await stat(sftp, p).catch((e) => { throw withPath(e, 'stat', p); })), opts.signal);
  }

  async exists(p: string, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    try {
      await this.stat(p, opts);
      return true;
    } catch (err) {
      if ((err as { code?: unknown }).code === SFTP_STATUS.NO_SUCH_FILE) return false;
      throw err;
    }
  }

  /** The entries of a directory (or a tree, with `recursive`), filtered by pattern and mtime, sorted by path. */
  async list(dir: string, opts: ListOptions = {}): Promise<SftpFile[]> {
    const match = opts.pattern ? picomatch(opts.pattern, { dot: true }) : null;
    const after = newerThanMs(opts.newerThan);
    const filesOnly = !opts.includeDirectories && (match !== null || after !== null);
    const out: SftpFile[] = [];
    const walk = async (d: string): Promise<void> => {
      const entries = await this.run('list', (sftp) => readdir(sftp, d).catch((e) => { throw withPath(e, 'list', d); }), opts.signal);
      const subdirs: string[] = [];
      for (const e of entries) {
        if (e.filename === '.' || e.filename === '..') continue;
        const full = path.posix.join(d, e.filename);
        const f = describe(full, e.attrs);
        if (f.type === 'directory' && opts.recursive) subdirs.push(full);
        if (filesOnly && f.type === 'directory') continue;
        if (match && !match(path.posix.relative(dir, full))) continue;
        if (after !== null && Date.parse(f.mtime) <= after) continue;
        out.push(f);
      }
      await Promise.all(subdirs.map(walk));
    };
    await walk(dir);
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** The file's bytes; or, with a local path or a Writable, the file written there (returns the byte count). */
  get(remote: string, opts?: { signal?: AbortSignal; size?: number }): Promise<Buffer>;
  get(remote: string, dest: string | Writable, opts?: { signal?: AbortSignal }): Promise<number>;
  async get(remote: string, destOrOpts?: string | Writable | { signal?: AbortSignal; size?: number }, maybeOpts: { signal?: AbortSignal } = {}): Promise<Buffer | number> {
    if (destOrOpts === undefined || (typeof destOrOpts === 'object' && !(destOrOpts instanceof Writable))) {
      const o = (destOrOpts ?? {}) as { signal?: AbortSignal; size?: number };
      return this.run('get', (sftp) => readWhole(sftp, remote, o.size).catch((e) => { throw withPath(e, 'get', remote); }), o.signal);
    }
    const dest = destOrOpts;
    return this.run('get', async (sftp) => {
      try {
        if (dest instanceof Writable) {
          let bytes = 0;
          const src = sftp.createReadStream(remote);
          src.on('data', (c: Buffer) => { bytes += c.length; });
          await pipeline(src, dest);
          return bytes;
        }
        const st = await stat(sftp, remote);
        await mkdir(path.dirname(dest), { recursive: true });
        if (st.size >= LARGE_FILE_BYTES) {
          await new Promise<void>((resolve, reject) => sftp.fastGet(remote, dest, { concurrency: 16 }, (err) => (err ? reject(err) : resolve())));
          return st.size;
        }
        const data = await readWhole(sftp, remote, st.size);
        await writeFile(dest, data);
        return data.length;
      } catch (e) {
        throw withPath(e, 'get', remote);
      }
    }, maybeOpts.signal);
  }

  /** Upload a local file, a Buffer or a stream to `remote`; `mkdirs` creates its directories first. */
  async put(src: string | Buffer | Readable, remote: string, opts: { mkdirs?: boolean; mode?: number; signal?: AbortSignal } = {}): Promise<number> {
    if (opts.mkdirs) await this.mkdir(path.posix.dirname(remote), opts);
    return this.run('put', async (sftp) => {
      try {
        if (Buffer.isBuffer(src)) {
          await writeWhole(sftp, remote, src, opts.mode);
          return src.length;
        }
        if (src instanceof Readable) {
          let bytes = 0;
          src.on('data', (c: Buffer) => { bytes += c.length; });
          await pipeline(src, sftp.createWriteStream(remote, { mode: opts.mode ?? 0o644 }));
          return bytes;
        }
        const { size } = await localStat(src);
        if (size >= LARGE_FILE_BYTES) {
          await new Promise<void>((resolve, reject) => sftp.fastPut(src, remote, { concurrency: 16, mode: opts.mode ?? 0o644 }, (err) => (err ? reject(err) : resolve())));
          return size;
        }
        const data = await readFile(src);
        await writeWhole(sftp, remote, data, opts.mode);
        return data.length;
      } catch (e) {
        throw withPath(e, 'put', remote);
      }
    }, opts.signal);
  }

  /** `mkdir -p`: creates the directory and its missing parents; an existing directory is fine. */
  async mkdir(dir: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.run('mkdir', async (sftp) => {
      const make = async (d: string): Promise<void> => {
        try {
          await mkdirOne(sftp, d);
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          if (code === SFTP_STATUS.NO_SUCH_FILE && d !== path.posix.dirname(d)) {
            await make(path.posix.dirname(d));
            return make(d);
          }
          // Most servers answer a plain FAILURE when it exists: check that it is a directory.
          const st = await stat(sftp, d).catch(() => null);
          if (st && typeOf(st.mode) === 'directory') return;
          throw withPath(err, 'mkdir', d);
        }
      };
      await make(dir);
    }, opts.signal);
  }

  /** Delete a file, or a directory (its contents too with `recursive`). */
  async delete(p: string, opts: { recursive?: boolean; signal?: AbortSignal } = {}): Promise<void> {
    const st = await this.stat(p, opts);
    if (st.type !== 'directory') {
      await this.run('delete', (sftp) => unlink(sftp, p).catch((e) => { throw withPath(e, 'delete', p); }), opts.signal);
      return;
    }
    if (opts.recursive) {
      const entries = await this.list(p, { includeDirectories: true, signal: opts.signal });
      await Promise.all(entries.map((e) => this.delete(e.path, opts)));
    }
    await this.run('rmdir', (sftp) => rmdirOne(sftp, p).catch((e) => { throw withPath(e, 'rmdir', p); }), opts.signal);
  }

  async rename(from: string, to: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.run('rename', (sftp) => rename(sftp, from, to).catch((e) => { throw withPath(e, 'rename', `${from} → ${to}`); }), opts.signal);
  }

  /**
   * Download many files over the pool, as an async iterator of results in completion order. A
   * sliding window: a new file starts the moment one finishes, never waiting for a batch.
   */
  async *download(files: Iterable<SftpFile | string | { path: string; size?: number }>, opts: DownloadOptions): AsyncGenerator<DownloadResult, void, void> {
    const list = [...files].map((f) => (typeof f === 'string' ? { path: f } : f));
    const limit = Math.max(1, opts.concurrency ?? this.pool.maxConnections * this.pool.maxInFlight);
    const signal = this.signal(opts.signal);
    const toDir = typeof opts.to === 'string' ? opts.to : null;
    if (toDir) await mkdir(toDir, { recursive: true });
    const ready: DownloadResult[] = [];
    let wake: (() => void) | null = null;
    let next = 0, active = 0;
    const one = async (file: SftpFile | { path: string; size?: number }) => {
      let result: DownloadResult;
      try {
        const data = await this.run('get', (sftp) => readWhole(sftp, file.path, file.size).catch((e) => { throw withPath(e, 'get', file.path); }), signal, opts.retries);
        if (toDir) {
          const localPath = path.join(toDir, path.posix.basename(file.path));
          await writeFile(localPath, data);
          result = { file, bytes: data.length, localPath };
        } else {
          const handler = opts.to as (f: typeof file, d: Buffer) => unknown;
          result = { file, bytes: data.length, value: await handler(file, data) };
        }
      } catch (err) {
        result = { file, bytes: 0, error: err as Error };
      }
      active--;
      ready.push(result);
      wake?.();
    };
    const fill = () => {
      while (active < limit && next < list.length && !signal?.aborted) {
        active++;
        void one(list[next++]);
      }
    };
    fill();
    while (active || ready.length) {
      if (!ready.length) await new Promise<void>((r) => { wake = r; });
      wake = null;
      while (ready.length) {
        const r = ready.shift()!;
        if (r.error && !opts.tolerateFailures) {
          // Start nothing more; the ones in flight finish on their own.
          next = list.length;
          throw r.error;
        }
        fill();
        yield r;
      }
      fill();
    }
    signal?.throwIfAborted();
  }
}
