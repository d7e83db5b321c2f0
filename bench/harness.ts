/**
 * Benchmark plumbing: a fresh PostgreSQL database per run, Updraft services as real child
 * processes, percentiles, and the one-line JSON result.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import postgres from 'postgres';
import { freePort } from '../tests/helpers/ports.ts';
import { sql } from 'drizzle-orm';
import { openDatabase, DagBag, queries, triggerDagRun, RunState, type Database } from '../core/index.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export async function freshDatabase(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomUUID().replace(/-/g, '').slice(0, 10)}`;
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

export function startService(args: string[], env: Record<string, string>): ChildProcess {
  // BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles every service.
  const nodeArgs = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, 'bin/updraft.js', ...args], {
    cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.on('data', (d: Buffer) => { if (process.env.BENCH_VERBOSE) process.stderr.write(d); });
  return child;
}

export async function stopService(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

export function log(json: boolean, message: string): void {
  if (!json || process.env.BENCH_VERBOSE) process.stderr.write(`${message}\n`);
}

export interface BenchDatabase {
  url: string;
  /** Environment for services started against it (database + the bench DAGs folder). */
  env: Record<string, string>;
  database: Database;
  bag: DagBag;
  close(): Promise<void>;
}

/** A fresh, migrated database with bench/dags loaded and synced; close() drops it. */
export async function benchDatabase(prefix: string, extraEnv: Record<string, string> = {}): Promise<BenchDatabase> {
  const pg = await freshDatabase(prefix);
  const env = { DATABASE_URL: pg.url, UPDRAFT_DAGS_FOLDER: path.join(ROOT, 'bench/dags'), ...extraEnv };
  const database = await openDatabase({ databaseUrl: pg.url });
  await database.migrate();
  const bag = await DagBag.load(env.UPDRAFT_DAGS_FOLDER);
  await database.db.transaction((tx) => queries.dags.syncDagBag(tx, bag.dags.values(), bag.errors));
  for (const [file, e] of bag.errors) process.stderr.write(`bench: import error in ${file}: ${e}\n`);
  return {
    url: pg.url, env, database, bag,
    async close() {
      await database.close();
      await pg.drop();
    },
  };
}

export type Run = NonNullable<Awaited<ReturnType<typeof queries.dagRuns.getRunByPk>>>;

/** Trigger a run and wait for it to succeed; a failed run throws, naming its failed TIs. */
export async function runToEnd(database: Database, bag: DagBag, dagId: string, conf: Record<string, unknown> = {}, timeoutMs = 300_000): Promise<Run> {
  const { runPk } = await triggerDagRun(database, bag.get(dagId), conf);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await queries.dagRuns.getRunByPk(database.db, runPk);
    if (run?.state === RunState.SUCCESS) return run;
    if (run?.state === RunState.FAILED) {
      const bad = await database.rows<{ task_id: string; map_index: number; state: string; error: string | null }>(sql`
        select task_id, map_index, state, error from task_instances
        where run_pk = ${runPk} and state in ('failed', 'upstream_failed') order by id limit 3`);
      const why = bad.map((t) => `${t.task_id}[${t.map_index}] ${t.state}${t.error ? `: ${t.error}` : ''}`).join('; ');
      throw new Error(`run of ${dagId} failed (${why || 'no failed TI recorded'})`);
    }
    if (Date.now() > deadline) throw new Error(`run of ${dagId} not finished after ${timeoutMs / 1000} s (state ${run?.state})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `updraft bigquery-emulator` as its own process, on a free port; resolves once it answers. */
export async function startEmulatorProcess(args: string[]): Promise<{ url: string; stop(): void }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['bin/updraft.js', 'bigquery-emulator', '--port', String(port), ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.on('data', (d: Buffer) => { if (process.env.BENCH_VERBOSE) process.stderr.write(d); });
  const url = `http://127.0.0.1:${port}`;
  for (const deadline = Date.now() + 30_000; ;) {
    if (await fetch(`${url}/emulator/stats`).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('the BigQuery emulator did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, stop: () => { child.kill('SIGTERM'); } };
}
