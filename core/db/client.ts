/**
 * The one module that picks the driver. `DATABASE_URL` set: PostgreSQL through postgres.js.
 * Otherwise embedded PGlite in a data directory. Everything else receives a `Database`
 * (typed drizzle handle + notify/listen) and never learns which driver sits underneath.
 */
import { fileURLToPath } from 'node:url';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { sql, type SQL } from 'drizzle-orm';
import * as schema from './schema.ts';
import { DatabaseUnreachableError } from '../errors.ts';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type Executor = Db | Tx;

export const Channel = {
  SCHEDULER: 'updraft_scheduler',
  WORKER: 'updraft_worker',
  TRIGGERER: 'updraft_triggerer',
} as const;
export type Channel = (typeof Channel)[keyof typeof Channel];

export interface Database {
  readonly db: Db;
  readonly kind: 'pglite' | 'postgres';
  /** Human-readable location, without credentials. */
  readonly where: string;
  /** Rows of a raw statement, whichever driver runs it. */
  rows<T>(query: SQL, ex?: Executor): Promise<T[]>;
  /**
   * The same, as a prepared statement on PostgreSQL: for the hot path's large statements
   * (claim, finish), whose planning would otherwise cost about a millisecond each time.
   */
  preparedRows<T>(query: SQL, ex?: Executor): Promise<T[]>;
  /**
   * Run statements as one transaction and return each one's rows. On PostgreSQL, begin, the
   * statements (prepared) and commit go out together, so the transaction costs one round trip;
   * the server still runs them in order, each seeing the ones before. On PGlite they run one
   * after another. A failing statement rolls everything back and its error is thrown (see
   * REQUIRE_FAILED for a condition checked with updraft_require()).
   */
  pipeline(statements: SQL[]): Promise<Record<string, unknown>[][]>;
  /**
   * A transaction driven in steps: each `send` pipelines its statements (as `pipeline` does)
   * and waits for their rows, `ex` runs drizzle queries in the same transaction between sends,
   * and a send with `commit` ends it in the same round trip. It commits after `fn` unless a
   * send already did; it rolls back if `fn` throws.
   */
  pipelined<T>(fn: (pipe: Pipe) => Promise<T>): Promise<T>;
  /**
   * Subscribe to a channel. If the connection behind it is lost (a database restart), LISTEN
   * is re-established by itself, retrying until the database is back, and `onResubscribed`
   * runs then: NOTIFYs sent meanwhile are gone, so the caller should look for work.
   */
  listen(channel: Channel, onPayload: (payload: string) => void, onResubscribed?: () => void): Promise<() => Promise<void>>;
  migrate(): Promise<void>;
  close(): Promise<void>;
}

export interface Pipe {
  send(statements: SQL[], opts?: { commit?: boolean }): Promise<Record<string, unknown>[][]>;
  /** The transaction as a drizzle executor. */
  readonly ex: Executor;
}

export interface OpenOptions {
  databaseUrl?: string | null;
  /** PGlite data directory, or `memory://` for a throwaway database. */
  dataDir?: string;
  /** Connection attempts before giving up; Infinity for long-running services. */
  connectAttempts?: number;
  poolSize?: number;
  /** PostgreSQL ends our sessions idle inside a transaction this long (default 30 s). */
  idleTransactionTimeoutMs?: number;
  onRetry?: (message: string) => void;
}

const migrationsFolder = fileURLToPath(new URL('../../drizzle', import.meta.url));

/** Statements inside a transaction queue a NOTIFY that is delivered on commit. */
export function notify(ex: Executor, channel: Channel, payload = ''): Promise<unknown> {
  return ex.execute(notifySql(channel, payload));
}

export const notifySql = (channel: Channel, payload = ''): SQL => sql`select pg_notify(${channel}, ${payload})`;

/** SQLSTATE raised by updraft_require(ok, message) (migration 0006) when ok is not true. */
export const REQUIRE_FAILED = 'UD001';

/** The `code`s along an error's cause chain: drizzle's "Failed query" wraps the driver's error. */
function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  for (let e = err as { code?: unknown; cause?: unknown } | null | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string') codes.push(e.code);
  }
  return codes;
}

export function isRequireFailure(err: unknown): boolean {
  return errorCodes(err).includes(REQUIRE_FAILED);
}

/** Network-level failures the drivers report without a SQLSTATE. */
const CONNECTION_CODES = new Set([
  'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT',
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
]);

/** The connection itself failed (as opposed to the server refusing or aborting a statement). */
function isConnectionLoss(err: unknown): boolean {
  return errorCodes(err).some((code) => CONNECTION_CODES.has(code) || code.startsWith('08') || code.startsWith('57P'));
}

/**
 * Whether a failed statement is worth retrying as it is: the connection failed (no SQLSTATE,
 * or class 08), the server is shutting down, starting or out of resources (57P0x, 53), or a
 * serialization or deadlock race was lost (40001, 40P01). Anything else with a SQLSTATE is the
 * database refusing the data itself (a constraint, a value out of range), and retrying the same
 * write would fail the same way.
 */
export function isTransientDbError(err: unknown): boolean {
  const codes = errorCodes(err);
  if (codes.some((code) => CONNECTION_CODES.has(code))) return true;
  const sqlState = codes.find((code) => /^[0-9A-Z]{5}$/.test(code));
  if (!sqlState) return true;
  return sqlState.startsWith('08') || sqlState.startsWith('53') || sqlState.startsWith('57P')
    || sqlState === '40001' || sqlState === '40P01';
}

/**
 * The database's own words for a refused statement: its message, SQLSTATE and, where the
 * driver reports them, the constraint and detail (without the statement's parameters, which
 * may hold secrets or megabytes). Drizzle wraps driver errors; this reads the wrapped one.
 */
export function dbErrorMessage(err: unknown): string {
  for (let e = err as { code?: unknown; cause?: unknown; message?: string; detail?: string; constraint_name?: string; constraint?: string } | null | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) {
      const constraint = e.constraint_name ?? e.constraint;
      // The detail can quote a whole row: keep its start only.
      const detail = e.detail && e.detail.length > 240 ? `${e.detail.slice(0, 240)}…` : e.detail;
      return `${e.message ?? 'error'} (SQLSTATE ${e.code}${constraint ? `, constraint ${constraint}` : ''})${detail ? `: ${detail}` : ''}`;
    }
  }
  return (err as Error)?.message ?? String(err);
}

export async function openDatabase(opts: OpenOptions = {}): Promise<Database> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl, opts) : openPglite(opts.dataDir ?? '.updraft/db');
}

/** The rows of a raw execute() result, whichever driver returned it. */
export function resultRows<T>(result: unknown): T[] {
  // postgres.js returns an array-like RowList; PGlite returns { rows }.
  if (Array.isArray(result)) return result as T[];
  return ((result as { rows?: T[] }).rows ?? []) as T[];
}

async function openPglite(dataDir: string): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  const { migrate } = await import('drizzle-orm/pglite/migrator');
  if (!dataDir.startsWith('memory://')) mkdirSync(path.resolve(dataDir), { recursive: true });
  const client = new PGlite(dataDir);
  await client.waitReady;
  const db = drizzle(client, { schema }) as unknown as Db;
  const rows = async <T>(query: SQL, ex: Executor = db) => resultRows<T>(await ex.execute(query));
  const pglite: Database = {
    db, kind: 'pglite', where: dataDir.startsWith('memory://') ? 'PGlite (in memory)' : `PGlite at ${dataDir}`,
    rows, preparedRows: rows,
    pipeline: (statements) => pipelineOf(pglite, statements),
    async pipelined(fn) {
      return db.transaction(async (tx) => {
        let ended = false;
        return fn({
          ex: tx,
          async send(statements, opts) {
            if (ended) throw new Error('this transaction has already been committed');
            const out: Record<string, unknown>[][] = [];
            for (const st of statements) out.push(await rows<Record<string, unknown>>(st, tx));
            ended = opts?.commit === true;
            return out;
          },
        });
      });
    },
    async listen(channel, onPayload) {
      const unlisten = await client.listen(channel, onPayload);
      return async () => { await unlisten(); };
    },
    async migrate() { await migrate(db as never, { migrationsFolder }); },
    async close() { await client.close(); },
  };
  return pglite;
}

async function openPostgres(url: string, opts: OpenOptions): Promise<Database> {
  const { default: postgres } = await import('postgres');
  const { drizzle } = await import('drizzle-orm/postgres-js');
  const { migrate } = await import('drizzle-orm/postgres-js/migrator');
  const where = redact(url);
  const client = postgres(url, {
    max: opts.poolSize ?? 10,
    onnotice: () => {},
    connect_timeout: 10,
    // A process cut off mid-transaction must not hold row locks until TCP gives up (hours).
    connection: { idle_in_transaction_session_timeout: opts.idleTransactionTimeoutMs ?? 30_000 },
  });
  const listener = await createListener(url, opts.onRetry);
  await connectWithBackoff(() => client`select 1`, where, opts);
  const db = drizzle(client, { schema }) as unknown as Db;
  // drizzle's raw execute never prepares; go to the executor's own postgres.js handle for that.
  const dialect = (db as unknown as { dialect: { sqlToQuery(q: SQL): { sql: string; params: unknown[] } } }).dialect;
  /** Database.pipelined on one reserved connection. */
  async function pipelinedOn<T>(conn: Awaited<ReturnType<typeof client.reserve>>, fn: (pipe: Pipe) => Promise<T>): Promise<T> {
    // begin goes out with the first statements; a failed begin fails them too.
    const begun = conn.unsafe('begin').execute();
    begun.catch(() => undefined);
    let ended = false;
    let aborted: unknown = null;
    const pipe: Pipe = {
      // drizzle reads the client's type parsers; a reserved connection shares its pool's.
      ex: drizzle(Object.assign(conn, { options: client.options })) as unknown as Db,
      async send(statements, opts) {
        if (ended) throw new Error('this transaction has already been committed');
        const sent = statements.map((st) => {
          const { sql: text, params } = dialect.sqlToQuery(st);
          return conn.unsafe(text, params as never[], { prepare: true }).execute();
        });
        if (opts?.commit) {
          ended = true;
          sent.push(conn.unsafe('commit').execute());
        }
        const settled = await Promise.allSettled([begun, ...sent]);
        // After a failure the server answers "transaction is aborted" (25P02) to the rest and
        // turns a commit into a rollback; the first real error is the one to report.
        const failures = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as { code?: string }] : []));
        if (failures.length) throw (aborted = failures.find((e) => e?.code !== '25P02') ?? failures[0]);
        return settled.slice(1, statements.length + 1).map((r) => [...(r as PromiseFulfilledResult<Iterable<Record<string, unknown>>>).value]);
      },
    };
    try {
      const result = await fn(pipe);
      // A failed send aborted the transaction even if fn went on: never report it committed.
      if (aborted) throw aborted;
      if (!ended) {
        ended = true;
        await begun;
        await conn.unsafe('commit');
      }
      return result;
    } catch (err) {
      // After a lost connection the server has already rolled back, and a statement sent on
      // the dead reserved connection would crash postgres.js (it writes to a null socket).
      if (!ended && !isConnectionLoss(err)) await conn.unsafe('rollback').catch(() => undefined);
      throw err;
    }
  }

  const pg: Database = {
    db, kind: 'postgres', where,
    async rows<T>(query: SQL, ex: Executor = db) { return resultRows<T>(await ex.execute(query)); },
    async preparedRows<T>(query: SQL, ex: Executor = db) {
      const { sql: text, params } = dialect.sqlToQuery(query);
      const handle = (ex as unknown as { session: { client: { unsafe(q: string, p: unknown[], o: { prepare: boolean }): Promise<T[]> } } }).session.client;
      return [...await handle.unsafe(text, params, { prepare: true })];
    },
    pipeline: (statements) => pipelineOf(pg, statements),
    async pipelined(fn) {
      const conn = await client.reserve();
      try {
        return await pipelinedOn(conn, fn);
      } finally {
        conn.release();
      }
    },
    listen: (channel, onPayload, onResubscribed) => listener.listen(channel, onPayload, onResubscribed),
    async migrate() {
      // Several processes may start at once; one migrates, the others wait on the lock.
      const lock = await client.reserve();
      try {
        await lock`select pg_advisory_lock(74201)`;
        await migrate(db as never, { migrationsFolder });
      } finally {
        await lock`select pg_advisory_unlock(74201)`.catch(() => undefined);
        lock.release();
      }
    },
    async close() {
      await listener.close();
      await client.end({ timeout: 5 });
    },
  };
  return pg;
}

interface Subscriber {
  onPayload: (payload: string) => void;
  onResubscribed?: () => void;
}

/**
 * LISTEN on one dedicated connection. postgres.js re-listens once when that connection closes
 * and silently drops the subscription if the database is still down; this one retries with
 * backoff until every channel is subscribed again, then tells each subscriber.
 */
async function createListener(url: string, onRetry?: (message: string) => void) {
  const { default: postgres } = await import('postgres');
  const channels = new Map<string, Set<Subscriber>>();
  let closing = false;
  let resubscribing: Promise<void> | null = null;
  const conn = postgres(url, {
    max: 1, idle_timeout: undefined, max_lifetime: null, fetch_types: false, connect_timeout: 10, onnotice: () => {},
    onnotify: (channel: string, payload: string) => { for (const s of channels.get(channel) ?? []) s.onPayload(payload); },
    onclose: () => { if (!closing && channels.size) resubscribing ??= resubscribe().finally(() => { resubscribing = null; }); },
  } as Parameters<typeof postgres>[1]);
  const listenSql = (channel: string) => conn.unsafe(`listen "${channel.replace(/"/g, '""')}"`);

  async function resubscribe(): Promise<void> {
    for (let delay = 100; !closing; delay = Math.min(delay * 2, 5000)) {
      try {
        for (const channel of channels.keys()) await listenSql(channel);
        break;
      } catch (err) {
        onRetry?.(`LISTEN lost with the database connection; retrying in ${delay} ms (${(err as Error).message})`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    if (closing) return;
    for (const subs of channels.values()) for (const s of subs) s.onResubscribed?.();
  }

  return {
    async listen(channel: string, onPayload: (payload: string) => void, onResubscribed?: () => void): Promise<() => Promise<void>> {
      const sub: Subscriber = { onPayload, onResubscribed };
      let subs = channels.get(channel);
      if (!subs) {
        channels.set(channel, (subs = new Set()));
        try {
          await listenSql(channel);
        } catch (err) {
          channels.delete(channel);
          throw err;
        }
      }
      subs.add(sub);
      return async () => {
        subs.delete(sub);
        if (subs.size || channels.get(channel) !== subs) return;
        channels.delete(channel);
        await conn.unsafe(`unlisten "${channel.replace(/"/g, '""')}"`).catch(() => undefined);
      };
    },
    async close(): Promise<void> {
      closing = true;
      await conn.end({ timeout: 2 });
    },
  };
}

function pipelineOf(database: Database, statements: SQL[]): Promise<Record<string, unknown>[][]> {
  return database.pipelined((pipe) => pipe.send(statements, { commit: true }));
}

async function connectWithBackoff(probe: () => Promise<unknown>, where: string, opts: OpenOptions) {
  const attempts = opts.connectAttempts ?? 5;
  let delay = 500;
  for (let attempt = 1; ; attempt++) {
    try {
      await probe();
      return;
    } catch (err) {
      const reason = describeConnectError(err);
      if (attempt >= attempts) throw new DatabaseUnreachableError(where, reason, attempt);
      opts.onRetry?.(`database ${where} unreachable (${reason}); retry ${attempt} of ${attempts === Infinity ? '∞' : attempts - 1} in ${(delay / 1000).toFixed(1)}s`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15_000);
    }
  }
}

function describeConnectError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.code ? `${e.code}${e.message && !e.message.includes(e.code) ? `: ${e.message}` : ''}` : (e.message ?? String(err));
}

export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return `${u.protocol}//${u.username ? `${u.username}@` : ''}${u.host}${u.pathname}`;
  } catch {
    return '(unparseable DATABASE_URL)';
  }
}
