/**
 * Test databases. PostgreSQL suites get a freshly created database per file (dropped after),
 * so runs never collide; when no server is reachable they are skipped with a reason
 * (CI refuses to run without one, see .ci/run).
 */
import postgres from 'postgres';
import { randomUUID } from 'node:crypto';
import { openDatabase, type Database } from '../../core/index.ts';

export const ADMIN_URL = process.env.UPDRAFT_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function probe(): Promise<boolean> {
  const sql = postgres(ADMIN_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => undefined);
  }
}

export const pgAvailable = await probe();
if (!pgAvailable) {
  if (process.env.UPDRAFT_REQUIRE_PG) throw new Error(`PostgreSQL not reachable at ${ADMIN_URL}, and UPDRAFT_REQUIRE_PG is set`);
  process.stderr.write(`PostgreSQL not reachable at ${ADMIN_URL}; PostgreSQL suites are skipped\n`);
}

export interface TestPg {
  url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(prefix = 'updraft_test'): Promise<TestPg> {
  const name = `${prefix}_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const a = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

export interface Driver {
  name: 'pglite' | 'postgres';
  available: boolean;
  /** A migrated, empty database and a cleanup function. */
  open(): Promise<{ database: Database; cleanup(): Promise<void>; url: string | null }>;
}

/** The same suite runs on both drivers: in-memory PGlite and a fresh PostgreSQL database. */
export const drivers: Driver[] = [
  {
    name: 'pglite',
    available: true,
    async open() {
      const database = await openDatabase({ dataDir: 'memory://' });
      await database.migrate();
      return { database, url: null, cleanup: () => database.close() };
    },
  },
  {
    name: 'postgres',
    available: pgAvailable,
    async open() {
      const pg = await createTestDatabase();
      const database = await openDatabase({ databaseUrl: pg.url });
      await database.migrate();
      return { database, url: pg.url, cleanup: async () => { await database.close(); await pg.drop(); } };
    },
  },
];

/** Poll `check` until it returns a truthy value; generous by default for a busy 2-core machine. */
export async function waitFor<T>(check: () => Promise<T | null | undefined | false> | T | null | undefined | false, what: string, timeoutMs = 60_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
