/**
 * What every command needs: the frozen config, a database opened with the right patience
 * (services wait for the database indefinitely, one-shot commands give up after a few tries),
 * and the DAG bag.
 */
import path from 'node:path';
import {
  loadConfig, openDatabase, openSecrets, configureXComStorage, configureTaskLogs, XComStorage, DagBag, queries, masker,
  type Database, type UpdraftConfig, type SecretsSetup,
} from '../core/index.ts';
// Built-in providers register their connection types and triggers on import, so that
// `connections add|test` validate and test them and every service can run their triggers.
import '../providers/http/index.ts';
import '../providers/sftp/index.ts';
import '../providers/bigquery/index.ts';

export interface CliEnv {
  config: UpdraftConfig;
  database: Database;
  /** Connections and variables: the lookup in backend order, and the database store. */
  secrets: SecretsSetup;
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
  configureXComStorage(XComStorage.fromConfig(config.xcom));
  configureTaskLogs(config.logs);
  return { config, database, secrets: await openSecrets(config, database) };
}

export function loadBag(config: UpdraftConfig): Promise<DagBag> {
  return DagBag.load(config.dagsFolder);
}

/** Every line the CLI prints goes through the masker: a secret this process has seen prints as ***. */
export function out(text: string): void {
  process.stdout.write(masker.mask(text));
}

export function printJson(value: unknown): void {
  out(`${JSON.stringify(value)}\n`);
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

