/**
 * The filesystem XCom store: one file per large value under a root folder that every worker
 * and triggerer mounts (NFS, a shared volume). Rows hold the path relative to the root, so
 * the folder can be mounted at different places on different hosts as long as the config
 * names it.
 */
import { mkdir, readFile, rm, writeFile, rename } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { UpdraftError } from '../errors.ts';

export interface XComBlobStore {
  readonly name: string;
  put(at: { runPk: number; taskId: string; mapIndex: number; key: string }, bytes: Buffer, ext: string): Promise<string>;
  get(location: string): Promise<Buffer>;
  delete(locations: string[]): Promise<void>;
}

const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

export class FileXComStore implements XComBlobStore {
  readonly name: string;

  /** `root` null: a process without the filesystem backend configured, reading a row that has a file. */
  constructor(private readonly root: string | null) {
    this.name = root ? `filesystem ${root}` : 'filesystem (not configured)';
  }

  private resolve(location: string): string {
    if (!this.root) throw new UpdraftError(`an XCom value is stored in a file (${location}), but this process has no XCom path; set "xcom": { "backend": "filesystem", "path": ... } in updraft.config.json or UPDRAFT_XCOM_PATH, as on the process that wrote it`);
    const full = path.resolve(this.root, location);
    if (!full.startsWith(path.resolve(this.root) + path.sep)) throw new UpdraftError(`XCom location ${location} is outside the XCom folder ${this.root}`);
    return full;
  }

  async put(at: { runPk: number; taskId: string; mapIndex: number; key: string }, bytes: Buffer, ext: string): Promise<string> {
    const location = path.posix.join(`run-${at.runPk}`, safe(at.taskId), String(at.mapIndex), `${safe(at.key)}-${randomBytes(6).toString('hex')}${ext}`);
    const full = this.resolve(location);
    await mkdir(path.dirname(full), { recursive: true });
    // Write then rename: a reader never sees half a file.
    const tmp = `${full}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, full);
    return location;
  }

  async get(location: string): Promise<Buffer> {
    try {
      return await readFile(this.resolve(location));
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') throw new UpdraftError(`the XCom file ${location} is missing from ${this.root}; was the folder cleaned, or is it not shared with this host?`);
      throw err;
    }
  }

  async delete(locations: string[]): Promise<void> {
    await Promise.all(locations.map((l) => rm(this.resolve(l), { force: true })));
  }
}
