/**
 * A connection that dies mid-transaction must fail that transaction with a catchable error and
 * leave the pool usable. postgres.js 3.4.9 crashed the process here (a write scheduled on a
 * closed socket), hung `end()` on a statement queued between the socket's error and its close,
 * handed the dead session's error to the next query on the reconnected connection, and left
 * statements queued on a reserved connection unsettled forever when it closed;
 * patches/postgres+3.4.9.patch fixes all three, and this file fails without it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { sql } from 'drizzle-orm';
import { openDatabase, type Database } from '../../core/index.ts';
import { ADMIN_URL, createTestDatabase, pgAvailable, waitFor, type TestPg } from '../helpers/pg.ts';

describe.skipIf(!pgAvailable)('a PostgreSQL connection lost mid-transaction', () => {
  let testPg: TestPg;
  let database: Database;
  let admin: postgres.Sql;

  beforeAll(async () => {
    testPg = await createTestDatabase('updraft_connloss');
    database = await openDatabase({ databaseUrl: testPg.url, poolSize: 2 });
    admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  });
  afterAll(async () => {
    await database?.close();
    await admin?.end({ timeout: 1 });
    await testPg?.drop();
  });

  const kill = (pid: number) => admin`select pg_terminate_backend(${pid})`;
  const backendPid = async (ex?: Parameters<Database['rows']>[1]) =>
    (await database.rows<{ pid: number }>(sql`select pg_backend_pid() as pid`, ex))[0].pid;

  async function poolStillWorks(): Promise<void> {
    for (let i = 0; i < 4; i++) {
      const rows = await database.rows<{ i: number }>(sql`select ${i}::int as i`);
      expect(rows[0].i).toBe(i);
    }
  }

  it('drizzle transaction: rejects with a connection error, and the pool recovers', async () => {
    const outcome = database.db.transaction(async (tx) => {
      await kill(await backendPid(tx));
      await database.rows(sql`select pg_sleep(0.2)`, tx);
    });
    await expect(outcome).rejects.toMatchObject({ code: expect.stringMatching(/CONNECTION_CLOSED|ECONNRESET|57P01/) });
    await poolStillWorks();
  });

  it('pipelined transaction: rejects, is not released into the pool dead, and the pool recovers', async () => {
    const outcome = database.pipelined(async (pipe) => {
      await kill(await backendPid(pipe.ex));
      await new Promise((r) => setTimeout(r, 200));
      await pipe.send([sql`select 1`], { commit: true });
    });
    await expect(outcome).rejects.toMatchObject({ code: expect.stringMatching(/CONNECTION_CLOSED|ECONNRESET|57P01/) });
    await poolStillWorks();
  });

  it('pipelined transaction: statements still queued when the connection dies fail instead of hanging', async () => {
    const outcome = database.pipelined(async (pipe) => {
      const pid = await backendPid(pipe.ex);
      // A first-time parameterised statement is described first; the rest queue behind it.
      const statements = [sql`select pg_sleep(30)`, ...Array.from({ length: 50 }, (_, i) => sql`select ${i}::int + 1 as n`)];
      const sent = pipe.send(statements);
      sent.catch(() => undefined);
      await waitFor(async () => (await admin`select 1 from pg_stat_activity where pid = ${pid} and query like '%pg_sleep(30)%'`).length > 0, 'the sleep to run', 10_000, 20);
      await kill(pid);
      await sent;
    });
    await expect(outcome).rejects.toMatchObject({ code: expect.stringMatching(/CONNECTION_CLOSED|ECONNRESET|57P01/) });
    await poolStillWorks();
  });

  it('the session that follows on a reconnected connection starts clean', async () => {
    // Kill both pool connections while one is mid-transaction, then use both again.
    const tx = database.db.transaction(async (t) => {
      const pid = await backendPid(t);
      await kill(pid);
      await database.rows(sql`select pg_sleep(0.2)`, t);
    });
    await expect(tx).rejects.toBeDefined();
    const results = await Promise.all([0, 1, 2, 3].map((i) => database.rows<{ i: number }>(sql`select ${i}::int as i, pg_sleep(0.05)`)));
    expect(results.map((r) => r[0].i)).toEqual([0, 1, 2, 3]);
  });
});
