/**
 * SftpOperator: get, put or delete one file or a list of files, as an async task on the
 * worker's event loop through the worker's shared pool.
 *
 * Bulk downloads: `sftpGetTask(...)` is a function task that fetches one remote file; use it
 * with `iterate` (one TI, checkpointed, so a retry skips the files already done) or `expand`
 * (one TI per file). `sftpBulkDownload(...)` is the one-call form: it lists the directory and
 * iterates over the files.
 */
import { closeSync, futimesSync, openSync, writeSync } from 'node:fs';
import { mkdir, open, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BaseOperator, baseOptions, DagDefinitionError, ExecutionMode, task, type Context, type IterateOptions, type TaskOptions, type XComArg, type FunctionTask } from 'updraft';
import { SftpHook, type SftpFile } from './hook.ts';
import { SFTP_DEFAULT_CONN_ID } from './connection.ts';

export type SftpOperation = 'get' | 'put' | 'delete';

export interface SftpOperatorOptions extends TaskOptions {
  connId?: string;
  operation: SftpOperation;
  /** One remote path or a list (paired with localFilepath for get and put). */
  remoteFilepath: string | string[];
  localFilepath?: string | string[];
  /** Create missing directories: remote ones for put, local ones for get. */
  createIntermediateDirs?: boolean;
}

const OWN_KEYS = ['connId', 'operation', 'remoteFilepath', 'localFilepath', 'createIntermediateDirs'];

export class SftpOperator extends BaseOperator {
  static override templateFields = ['remoteFilepath', 'localFilepath'];

  connId: string;
  operation: SftpOperation;
  remoteFilepath: string | string[];
  localFilepath?: string | string[];
  readonly createIntermediateDirs: boolean;

  constructor(options: SftpOperatorOptions) {
    super({ mode: ExecutionMode.ASYNC, ...baseOptions(options, OWN_KEYS) });
    this.connId = options.connId ?? SFTP_DEFAULT_CONN_ID;
    this.operation = options.operation;
    this.remoteFilepath = options.remoteFilepath;
    this.localFilepath = options.localFilepath;
    this.createIntermediateDirs = options.createIntermediateDirs ?? false;
    const invalid = (m: string) => new DagDefinitionError(this.dagId, `invalid SftpOperator options: ${m}`, this.taskId);
    if (!['get', 'put', 'delete'].includes(this.operation)) throw invalid(`operation must be get, put or delete, got "${String(this.operation)}"`);
    if (this.operation !== 'delete') {
      if (this.localFilepath === undefined) throw invalid(`${this.operation} needs localFilepath`);
      if (Array.isArray(this.remoteFilepath) !== Array.isArray(this.localFilepath)
        || (Array.isArray(this.remoteFilepath) && this.remoteFilepath.length !== (this.localFilepath as string[]).length)) {
        throw invalid('remoteFilepath and localFilepath must both be one path, or lists of the same length');
      }
    }
  }

  async execute(ctx: Context): Promise<string[]> {
    const hook = await SftpHook.create(ctx, this.connId);
    const remotes = Array.isArray(this.remoteFilepath) ? this.remoteFilepath : [this.remoteFilepath];
    const locals = this.localFilepath === undefined ? [] : Array.isArray(this.localFilepath) ? this.localFilepath : [this.localFilepath];
    const started = Date.now();
    let bytes = 0;
    await Promise.all(remotes.map(async (remote, i) => {
      if (this.operation === 'delete') return hook.delete(remote, { signal: ctx.signal });
      if (this.operation === 'get') {
        if (!this.createIntermediateDirs) await assertLocalDir(path.dirname(locals[i]));
        bytes += await hook.get(remote, locals[i], { signal: ctx.signal });
      } else {
        bytes += await hook.put(locals[i], remote, { mkdirs: this.createIntermediateDirs, signal: ctx.signal });
      }
    }));
    ctx.log.info('%s: %d file(s)%s in %d ms', this.operation, remotes.length, this.operation === 'delete' ? '' : `, ${bytes} bytes`, Date.now() - started);
    return this.operation === 'put' ? remotes : this.operation === 'get' ? locals : remotes;
  }
}

async function assertLocalDir(dir: string): Promise<void> {
  const st = await stat(dir).catch(() => null);
  if (!st?.isDirectory()) throw new Error(`local directory ${dir} does not exist; create it or set createIntermediateDirs: true`);
}

export interface SftpGetTaskOptions extends Partial<TaskOptions> {
  connId?: string;
  /** Local directory the files land in (created if missing), keeping their names. */
  to: string;
}

/** What one fetched file returns: small, so a 17,000-item result stays small. */
export interface FetchedFile {
  path: string;
  localPath: string;
  bytes: number;
}

/**
 * A function task that downloads one remote file (`{ file }`: a path or an `SftpFile` from
 * `list`) into `to`, through the worker's shared pool. Fan it out with `iterate` or `expand`.
 *
 * A file from `list` is written with the remote modification time. A retried try (say after
 * its worker was killed) skips a file already on disk with the remote's size and modification
 * time, as rsync's quick check does: it was written whole by an earlier try (the time is set
 * only after the bytes), so only files the earlier try had in flight are fetched again.
 */
export function sftpGetTask(taskId: string, options: SftpGetTaskOptions): FunctionTask<{ file: SftpFile | string }, FetchedFile> {
  const { connId = SFTP_DEFAULT_CONN_ID, to, ...taskOptions } = options;
  return task({ ...(taskOptions as TaskOptions), taskId }, async ({ file }: { file: SftpFile | string }, ctx: Context): Promise<FetchedFile> => {
    const remote = typeof file === 'string' ? file : file.path;
    const localPath = path.join(to, path.posix.basename(remote));
    const mtime = typeof file === 'string' ? null : new Date(file.mtime);
    if (typeof file !== 'string' && mtime && ctx.tryNumber > 1) {
      const have = await stat(localPath).catch(() => null);
      if (have?.isFile() && have.size === file.size && have.mtimeMs === mtime.getTime()) return { path: remote, localPath, bytes: have.size };
    }
    const hook = await SftpHook.create(ctx, connId);
    const data = await hook.get(remote, { size: typeof file === 'string' ? undefined : file.size });
    await writeLocal(localPath, data, mtime);
    return { path: remote, localPath, bytes: data.length };
  }) as unknown as FunctionTask<{ file: SftpFile | string }, FetchedFile>;
}

/** Files up to this size are written synchronously. */
const SYNC_WRITE_BYTES = 64 * 1024;

const madeDirs = new Set<string>();
async function writeLocal(localPath: string, data: Buffer, mtime: Date | null): Promise<void> {
  const dir = path.dirname(localPath);
  if (!madeDirs.has(dir)) {
    await mkdir(dir, { recursive: true });
    madeDirs.add(dir);
  }
  if (data.length <= SYNC_WRITE_BYTES) {
    // Into the page cache in tens of microseconds, where each awaited step below is a trip
    // through the thread pool and back to a busy loop (about half a millisecond each).
    const fd = openSync(localPath, 'w');
    try {
      for (let off = 0; off < data.length;) off += writeSync(fd, data, off);
      if (mtime) futimesSync(fd, mtime, mtime);
    } finally {
      closeSync(fd);
    }
    return;
  }
  if (!mtime) return writeFile(localPath, data);
  const fh = await open(localPath, 'w');
  try {
    await fh.writeFile(data);
    await fh.utimes(mtime, mtime);
  } finally {
    await fh.close();
  }
}

/** Files in flight in one bulk download: enough to fill the wire at tens of ms RTT. */
const DEFAULT_CONCURRENCY = 128;

export interface SftpBulkDownloadOptions extends IterateOptions {
  /** The iterate task's id; the listing task is `<taskId>_list`. */
  taskId: string;
  connId?: string;
  remoteDir: string;
  pattern?: string;
  newerThan?: string;
  recursive?: boolean;
  to: string;
  /** Options of the iterate task, such as `retries` (its listing task takes none). */
  taskOptions?: Omit<Partial<TaskOptions>, 'taskId'>;
}

/**
 * One call for a bulk download inside a DAG: a task lists `remoteDir` (by pattern), then one
 * iterate TI fetches every file, `concurrency` at a time (default 256: the default pool's
 * width, `max_connections` 4 × `max_in_flight` 64), checkpointing as it
 * goes: a retried TI, say after its worker was killed, fetches only the files not yet done.
 * Returns the iterate task's output (a `FetchedFile` per file).
 */
export function sftpBulkDownload(options: SftpBulkDownloadOptions): XComArg<FetchedFile[]> {
  const { taskId, connId = SFTP_DEFAULT_CONN_ID, remoteDir, pattern, newerThan, recursive, to, taskOptions, ...iterateOptions } = options;
  const list = task(`${taskId}_list`, async (_: void, ctx: Context): Promise<SftpFile[]> => {
    const hook = await SftpHook.create(ctx, connId);
    const files = await hook.list(remoteDir, { pattern, newerThan, recursive });
    const only = files.filter((f) => f.type === 'file');
    ctx.log.info('%d file(s) to fetch from %s%s', only.length, remoteDir, pattern ? ` matching ${pattern}` : '');
    return only;
  });
  const fetch = sftpGetTask(taskId, { connId, to });
  return fetch.iterate({ file: list() }, { concurrency: DEFAULT_CONCURRENCY, ...iterateOptions }, taskOptions);
}
