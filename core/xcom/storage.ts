/**
 * How XCom values are kept. Small values go inline, as JSON in the row, in the same batch
 * statement as the task's finish: the hot path pays nothing. A value whose JSON is larger
 * than `compressAbove` bytes is gzipped; one larger than `inlineLimit` leaves the row for the
 * configured store (with the filesystem backend, a file in a folder every process reaches).
 * The row's `codec` records which, so any process decodes any row. Trigger event payloads
 * over the limit take the same path.
 */
import { gzip as gzipCb, gunzip as gunzipCb } from 'node:zlib';
import { promisify } from 'node:util';
import { UpdraftError } from '../errors.ts';
import type { XComConfig } from '../config.ts';
import { FileXComStore, type XComBlobStore } from './file-store.ts';

const gzip = promisify(gzipCb);
const gunzip = promisify(gunzipCb);

export class XComStorageError extends UpdraftError {}

/** The codecs a row can carry; null means `value` is the value. */
export const XComCodec = { GZIP: 'gzip', FILE: 'file', FILE_GZIP: 'file+gzip' } as const;
export type XComCodec = (typeof XComCodec)[keyof typeof XComCodec];

export interface XComAddress {
  runPk: number;
  taskId: string;
  mapIndex: number;
  key: string;
}

/** A value as a row holds it. */
export interface StoredXCom {
  value: unknown;
  codec: XComCodec | null;
  data: Buffer | null;
  size: number | null;
}

export interface XComStorageOptions {
  compressAbove: number;
  inlineLimit: number;
  store: XComBlobStore | null;
}

export class XComStorage {
  constructor(readonly options: XComStorageOptions) {}

  static fromConfig(config: XComConfig): XComStorage {
    return new XComStorage({
      compressAbove: config.compressAbove, inlineLimit: config.inlineLimit,
      store: config.backend === 'filesystem' ? new FileXComStore(config.path!) : null,
    });
  }

  get backend(): string {
    return this.options.store?.name ?? 'database';
  }

  /** Whether a value must be encoded before it is written (its JSON is over a threshold). */
  needsEncoding(json: string): boolean {
    return json.length > Math.min(this.options.compressAbove, this.options.inlineLimit) / 3
      && Buffer.byteLength(json) > Math.min(this.options.compressAbove, this.options.inlineLimit);
  }

  async encode(value: unknown, at: XComAddress): Promise<StoredXCom> {
    if (value === undefined) return { value: null, codec: null, data: null, size: null };
    if (value === null || typeof value !== 'object' && typeof value !== 'string') return { value, codec: null, data: null, size: null };
    const json = JSON.stringify(value);
    if (!this.needsEncoding(json)) return { value, codec: null, data: null, size: null };
    const raw = Buffer.from(json, 'utf8');
    const { compressAbove, inlineLimit, store } = this.options;
    const compress = raw.length > compressAbove;
    const bytes = compress ? await gzip(raw) : raw;
    if (store && raw.length > inlineLimit) {
      const location = await store.put(at, bytes, compress ? '.json.gz' : '.json');
      return { value: { location }, codec: compress ? XComCodec.FILE_GZIP : XComCodec.FILE, data: null, size: raw.length };
    }
    // The database backend keeps an uncompressed value inline, however large (jsonb holds it).
    if (!compress) return { value, codec: null, data: null, size: null };
    return { value: null, codec: XComCodec.GZIP, data: bytes, size: raw.length };
  }

  /** A write as the row will hold it. */
  async encodeWrite<T extends XComAddress & { value: unknown }>(w: T): Promise<T & StoredXCom> {
    return { ...w, ...await this.encode(w.value, w) };
  }

  readonly decode = async (row: { value: unknown; codec: string | null; data: Buffer | null }): Promise<unknown> => {
    switch (row.codec) {
      case null: return row.value ?? undefined;
      case XComCodec.GZIP: return JSON.parse((await gunzip(row.data!)).toString('utf8'));
      case XComCodec.FILE:
      case XComCodec.FILE_GZIP: {
        const location = (row.value as { location?: string } | null)?.location;
        if (!location) throw new XComStorageError(`an XCom row with codec "${row.codec}" has no file location`);
        const store = this.options.store ?? new FileXComStore(null);
        const bytes = await store.get(location);
        return JSON.parse((row.codec === XComCodec.FILE_GZIP ? await gunzip(bytes) : bytes).toString('utf8'));
      }
      default: throw new XComStorageError(`an XCom row uses codec "${row.codec}", which this version of Updraft does not know`);
    }
  };

  /** Delete the files of rows being cleared (best effort: a missing file is fine). */
  async discard(rows: { value: unknown; codec: string | null }[]): Promise<void> {
    const locations = rows.filter((r) => r.codec?.startsWith('file')).map((r) => (r.value as { location: string }).location);
    if (locations.length) await (this.options.store ?? new FileXComStore(null)).delete(locations);
  }
}

let current = new XComStorage({ compressAbove: 65_536, inlineLimit: 65_536, store: null });

/** The process's XCom storage, set once from the config at start-up. */
export function xcomStorage(): XComStorage {
  return current;
}

export function configureXComStorage(storage: XComStorage): void {
  current = storage;
}
