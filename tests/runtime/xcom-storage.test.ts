/**
 * XCom storage: small values inline, values over `compressAbove` gzipped in the row, values
 * over `inlineLimit` in files with the filesystem backend; the codec is recorded per row and
 * any process decodes any row. A 5 MB value flows to a downstream task, and a trigger event
 * over the inline limit goes through the same backend, on both drivers.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { DagBag, XComStorage, FileXComStore, configureXComStorage, XComCodec, type Database } from '../../core/index.ts';
import { runDagLocally } from '../../cli/local-run.ts';
import { drivers } from '../helpers/pg.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/xcom-large', import.meta.url));
const at = { runPk: 1, taskId: 't', mapIndex: -1, key: 'return_value' };

describe('XCom storage codecs', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(path.join(tmpdir(), 'updraft-xcom-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps small values inline, gzips large ones in the row, and moves larger ones to files', async () => {
    const db = new XComStorage({ compressAbove: 1000, inlineLimit: 1000, store: null });
    expect(await db.encode({ a: 1 }, at)).toEqual({ value: { a: 1 }, codec: null, data: null, size: null });
    expect(await db.encode(42, at)).toEqual({ value: 42, codec: null, data: null, size: null });
    const big = { text: 'abc'.repeat(2000) };
    const gz = await db.encode(big, at);
    expect(gz).toMatchObject({ value: null, codec: XComCodec.GZIP, size: JSON.stringify(big).length });
    expect(gz.data!.length).toBeLessThan(200);
    expect(await db.decode(gz)).toEqual(big);

    const fs = new XComStorage({ compressAbove: 10_000, inlineLimit: 1000, store: new FileXComStore(dir) });
    const inFile = await fs.encode({ text: 'x'.repeat(5000) }, at);
    expect(inFile.codec).toBe(XComCodec.FILE);
    const location = (inFile.value as { location: string }).location;
    expect(location).toMatch(/^run-1\/t\/-1\/return_value-[0-9a-f]{12}\.json$/);
    expect(existsSync(path.join(dir, location))).toBe(true);
    expect(await fs.decode(inFile)).toEqual({ text: 'x'.repeat(5000) });
    const gzFile = await fs.encode({ text: 'y'.repeat(20_000) }, at);
    expect(gzFile.codec).toBe(XComCodec.FILE_GZIP);
    expect(await fs.decode(gzFile)).toEqual({ text: 'y'.repeat(20_000) });
    await fs.discard([inFile, gzFile]);
    expect(existsSync(path.join(dir, location))).toBe(false);

    // A process without the folder configured says what to set.
    await expect(db.decode(gzFile)).rejects.toThrow(/this process has no XCom path; set "xcom": \{ "backend": "filesystem"/);
    await expect(db.decode({ value: null, codec: 'zstd', data: null })).rejects.toThrow(/codec "zstd", which this version of Updraft does not know/);
  });
});

for (const driver of drivers) {
  for (const backend of ['database', 'filesystem'] as const) {
    describe.skipIf(!driver.available)(`large XCom values end to end (${driver.name}, ${backend} backend)`, () => {
      let database: Database;
      let cleanup: () => Promise<void>;
      let dir: string;
      beforeEach(async () => {
        ({ database, cleanup } = await driver.open());
        dir = mkdtempSync(path.join(tmpdir(), 'updraft-xcom-e2e-'));
        configureXComStorage(new XComStorage({ compressAbove: 64 * 1024, inlineLimit: 64 * 1024, store: backend === 'filesystem' ? new FileXComStore(dir) : null }));
      });
      afterEach(async () => {
        configureXComStorage(new XComStorage({ compressAbove: 65_536, inlineLimit: 65_536, store: null }));
        await cleanup();
        rmSync(dir, { recursive: true, force: true });
      });

      it('passes a 5 MB value downstream and a 300 KB trigger event through the backend', async () => {
        const { bigText } = await import('../fixtures/xcom-large/large.ts');
        const bag = await DagBag.load(FIXTURE);
        const result = await runDagLocally(database, bag, bag.get('xcom_large'), {});
        expect(result.state).toBe('success');
        const rows = await database.rows<{ task_id: string; key: string; codec: string | null; size: number | null; value: unknown }>(
          sql`select task_id, key, codec, size, value from xcom order by task_id, key`);
        const byKey = Object.fromEntries(rows.map((r) => [`${r.task_id}/${r.key}`, r]));
        const want = backend === 'filesystem' ? XComCodec.FILE_GZIP : XComCodec.GZIP;
        expect(byKey['big/return_value'].codec).toBe(want);
        expect(byKey['big/return_value'].size).toBeGreaterThan(5 * 1024 * 1024);
        // The event reached the task through the same backend, under its own key.
        expect(byKey['big_event/__trigger_event__'].codec).toBe(want);
        const text = bigText(5 * 1024 * 1024);
        expect(byKey['consume/return_value'].value).toEqual({ length: text.length, sha: createHash('sha256').update(text).digest('hex') });
        expect(byKey['big_event/return_value'].value).toEqual({ length: 300_000 });
        if (backend === 'filesystem') expect(readdirSync(dir).length).toBeGreaterThan(0);
      });
    });
  }
}
