/** The private PostgreSQL cluster helper: start, query, restart under a live client, stop. */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import postgres from 'postgres';
import { PrivatePg, privatePgAvailable } from './private-pg.ts';

describe.skipIf(!privatePgAvailable)('PrivatePg', () => {
  let pg: PrivatePg | undefined;
  afterAll(async () => {
    await pg?.stop();
  });

  it('starts, survives a restart under a live client, and stops leaving nothing behind', async () => {
    pg = await PrivatePg.start({ name: 'private-pg-test' });
    expect(pg.url).toBe(`postgres://postgres@127.0.0.1:${pg.port}/postgres`);
    expect(pg.port).not.toBe(5432);

    const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
    try {
      const [before] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
      await pg.restart({ downMs: 200 });
      // The old backend was terminated; postgres.js reconnects for the next query.
      const [after] = await sql<{ pid: number; up: Date }[]>`select pg_backend_pid() as pid, pg_postmaster_start_time() as up`;
      expect(after.pid).not.toBe(before.pid);
      expect(Date.now() - after.up.getTime()).toBeLessThan(30_000);
    } finally {
      await sql.end({ timeout: 1 });
    }

    const dir = pg.dir;
    expect(existsSync(dir)).toBe(true);
    await pg.stop();
    expect(existsSync(dir)).toBe(false);
    pg = undefined;
  });
});
