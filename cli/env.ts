/**
 * What every command needs: the frozen config, a database opened with the right patience
 * (services wait for the database indefinitely, one-shot commands give up after a few tries),
 * and the DAG bag.
 */
import path from 'node:path';
import { loadConfig, openDatabase, DagBag, queries, type Database, type UpdraftConfig } from '../core/index.ts';

export interface CliEnv {
  config: UpdraftConfig;
  database: Database;
}

export async function openEnv(opts: { service?: boolean; memory?: boolean; migrate?: boolean } = {}): Promise<CliEnv> {
  const config = loadConfig();
  const database = await openDatabase({
    databaseUrl: opts.memory ? null : config.databaseUrl,
    dataDir: opts.memory ? 'memory://' : path.join(config.dataDir, 'db'),
    connectAttempts: opts.service ? Infinity : 4,
    idleTransactionTimeoutMs: config.idleTransactionTimeoutMs,
    onRetry: (m) => process.stderr.write(`updraft: ${m}\n`),
  });
  // PGlite is embedded: creating its schema on first use is what a zero-setup default means.
  if (opts.migrate || database.kind === 'pglite') await database.migrate();
  return { config, database };
}

export function loadBag(config: UpdraftConfig): Promise<DagBag> {
  return DagBag.load(config.dagsFolder);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => fmt(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

function fmt(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Pools declared in the config file are created, or resized, when a scheduler starts. */
export async function applyConfigPools(database: Database, config: UpdraftConfig): Promise<void> {
  for (const [name, p] of Object.entries(config.pools)) {
    await queries.pools.setPool(database.db, name, p.slots, p.includeDeferred, p.description ?? null);
  }
}

