/**
 * The hot path, on ssh2's SFTP channel directly: requests are pipelined on one channel and
 * nothing here adds listeners per call. A small file costs two round trips (open, then one
 * read sized from what the caller knows); the close is sent without waiting for its answer.
 * Larger files read their chunks in parallel.
 */
import type { FileEntryWithStats, InputAttributes, OpenMode, SFTPWrapper, Stats } from 'ssh2';

/** Bytes per READ/WRITE request when the server states no limits (SFTP's 32 KiB minimum). */
export const CHUNK = 32 * 1024;

/** The server's read limit (OpenSSH states 255 KiB through limits@openssh.com), else CHUNK. */
function readChunk(sftp: SFTPWrapper): number {
  const max = (sftp as unknown as { _maxReadLen?: number })._maxReadLen;
  return typeof max === 'number' && max >= CHUNK ? max : CHUNK;
}
/** Chunks of one file in flight at once. */
const CHUNKS_IN_FLIGHT = 16;

function cb<T>(resolve: (v: T) => void, reject: (e: unknown) => void) {
  return (err: Error | null | undefined, value: T) => (err ? reject(err) : resolve(value));
}

export function openFile(sftp: SFTPWrapper, path: string, flags: OpenMode, attrs?: InputAttributes): Promise<Buffer> {
  return new Promise((resolve, reject) => (attrs ? sftp.open(path, flags, attrs, cb(resolve, reject)) : sftp.open(path, flags, cb(resolve, reject))));
}

export function closeFile(sftp: SFTPWrapper, handle: Buffer): Promise<void> {
  return new Promise((resolve, reject) => sftp.close(handle, (err) => (err ? reject(err) : resolve())));
}

/** Send CLOSE and go on; a failure to close a read handle changes nothing for the caller. */
function closeLater(sftp: SFTPWrapper, handle: Buffer): void {
  try {
    sftp.close(handle, () => {});
  } catch { /* the channel is gone; so is the handle */ }
}

function readAt(sftp: SFTPWrapper, handle: Buffer, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => sftp.read(handle, buf, off, len, pos, (err, nb) => (err ? reject(err) : resolve(nb ?? 0))));
}

export function stat(sftp: SFTPWrapper, path: string): Promise<Stats> {
  return new Promise((resolve, reject) => sftp.stat(path, cb(resolve, reject)));
}

/** READDIR requests in flight on one directory handle. */
const READDIRS_IN_FLIGHT = 16;
const STATUS_EOF = 1;

/**
 * A directory's entries (without `.` and `..`). A READDIR answers with the next batch of
 * entries (OpenSSH: up to 100), so a listing of 17,000 names is 170 batches; they are requested
 * 16 at a time on the one handle instead of one round trip each. Each request takes the next
 * unread batch whatever order the server answers in, and the ones sent past the end answer EOF.
 */
export async function readdir(sftp: SFTPWrapper, path: string): Promise<FileEntryWithStats[]> {
  const handle = await new Promise<Buffer>((resolve, reject) => sftp.opendir(path, cb(resolve, reject)));
  const entries: FileEntryWithStats[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      let outstanding = 0;
      let eof = false;
      let failure: Error | null = null;
      const more = () => {
        while (!eof && !failure && outstanding < READDIRS_IN_FLIGHT) {
          outstanding++;
          sftp.readdir(handle, (err, list) => {
            outstanding--;
            if ((err as { code?: unknown } | undefined)?.code === STATUS_EOF) eof = true;
            else if (err) failure ??= err;
            else for (const e of list) entries.push(e);
            if (!eof && !failure) more();
            else if (outstanding === 0) {
              if (failure) reject(failure);
              else resolve();
            }
          });
        }
      };
      more();
    });
    return entries;
  } finally {
    closeLater(sftp, handle);
  }
}

export function mkdirOne(sftp: SFTPWrapper, path: string): Promise<void> {
  return new Promise((resolve, reject) => sftp.mkdir(path, (err) => (err ? reject(err) : resolve())));
}

export function unlink(sftp: SFTPWrapper, path: string): Promise<void> {
  return new Promise((resolve, reject) => sftp.unlink(path, (err) => (err ? reject(err) : resolve())));
}

export function rmdirOne(sftp: SFTPWrapper, path: string): Promise<void> {
  return new Promise((resolve, reject) => sftp.rmdir(path, (err) => (err ? reject(err) : resolve())));
}

export function rename(sftp: SFTPWrapper, from: string, to: string): Promise<void> {
  // posix-rename@openssh.com replaces an existing target, as rename(2) does; plain RENAME refuses.
  return new Promise((resolve, reject) => {
    const done = (err?: Error | null) => (err ? reject(err) : resolve());
    const ext = (sftp as unknown as { _extensions?: Record<string, string> })._extensions;
    if (ext?.['posix-rename@openssh.com']) sftp.ext_openssh_rename(from, to, done);
    else sftp.rename(from, to, done);
  });
}

/**
 * The whole file. `sizeHint` (from a listing) saves the stat: the read asks for one byte more
 * than expected, so a file that grew since is still read to its end.
 */
export async function readWhole(sftp: SFTPWrapper, path: string, sizeHint?: number): Promise<Buffer> {
  let size = sizeHint;
  let handle: Buffer;
  if (size === undefined) {
    // Both by path, so they travel together: one round trip for both answers.
    const [h, st] = await Promise.all([openFile(sftp, path, 'r'), stat(sftp, path).catch(() => null)]);
    handle = h;
    size = st?.size ?? 0;
  } else {
    handle = await openFile(sftp, path, 'r');
  }
  try {
    const want = size + 1;
    let buf = Buffer.allocUnsafe(want);
    let got: number;
    const chunk = readChunk(sftp);
    if (want <= chunk) {
      got = await readAt(sftp, handle, buf, 0, want, 0);
    } else {
      got = await readChunks(sftp, handle, buf, want, chunk);
    }
    // More than expected (the file grew), or a server that answers short: read on to EOF.
    if (got === want || (got < size && got > 0)) {
      const parts = [buf.subarray(0, got)];
      for (let pos = got; ;) {
        const more = Buffer.allocUnsafe(chunk);
        const nb = await readAt(sftp, handle, more, 0, chunk, pos);
        if (nb === 0) break;
        parts.push(more.subarray(0, nb));
        pos += nb;
      }
      buf = Buffer.concat(parts);
      got = buf.length;
    }
    return buf.subarray(0, got);
  } finally {
    closeLater(sftp, handle);
  }
}

/** Reads [0, want) in `chunk` pieces, CHUNKS_IN_FLIGHT at a time; returns the bytes up to the first short piece. */
async function readChunks(sftp: SFTPWrapper, handle: Buffer, buf: Buffer, want: number, chunk: number): Promise<number> {
  const chunks = Math.ceil(want / chunk);
  const got = new Array<number>(chunks).fill(0);
  let next = 0;
  const lane = async () => {
    while (next < chunks) {
      const i = next++;
      const off = i * chunk;
      const len = Math.min(chunk, want - off);
      got[i] = await readAt(sftp, handle, buf, off, len, off);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CHUNKS_IN_FLIGHT, chunks) }, lane));
  let total = 0;
  for (let i = 0; i < chunks; i++) {
    total += got[i];
    if (got[i] < Math.min(chunk, want - i * chunk)) break;
  }
  return total;
}

/** Write `data` to `path` (created or truncated), chunks in parallel, and wait for the close. */
export async function writeWhole(sftp: SFTPWrapper, path: string, data: Buffer, mode = 0o644): Promise<void> {
  const handle = await openFile(sftp, path, 'w', { mode });
  let failed: unknown = null;
  try {
    const chunks = Math.ceil(data.length / CHUNK);
    let next = 0;
    const lane = async () => {
      while (next < chunks) {
        const i = next++;
        const off = i * CHUNK;
        const len = Math.min(CHUNK, data.length - off);
        await new Promise<void>((resolve, reject) => sftp.write(handle, data, off, len, off, (err) => (err ? reject(err) : resolve())));
      }
    };
    await Promise.all(Array.from({ length: Math.min(CHUNKS_IN_FLIGHT, chunks) }, lane));
  } catch (err) {
    failed = err;
  }
  // The close is what tells a write error on some servers: wait for it.
  try {
    await closeFile(sftp, handle);
  } catch (err) {
    failed ??= err;
  }
  if (failed) throw failed;
}
