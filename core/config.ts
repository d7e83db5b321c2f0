/**
 * Configuration, resolved once at start-up into a frozen object: defaults, then the config
 * file (`updraft.config.json` in the working directory, or the path in UPDRAFT_CONFIG), then
 * environment variables. Everything is validated by zod; bad values fail fast with every
 * problem listed and where it came from.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.ts';
import { durationSchema } from './authoring/duration.ts';
import { formatZodIssues } from './authoring/operator.ts';
import { tagLimitSchema, type TagLimit } from './authoring/limits.ts';

const poolSchema = z.object({
  slots: z.number().int().min(-1),
  includeDeferred: z.boolean().default(false),
  description: z.string().optional(),
}).strict();

const xcomSchema = z.object({
  /** Where values larger than `inlineLimit` go: the database (default) or a shared folder. */
  backend: z.enum(['database', 'filesystem']).default('database'),
  /** The folder of the filesystem backend: one every worker and triggerer can reach. */
  path: z.string().min(1).optional(),
  /** Values whose JSON is larger than this many bytes are compressed (default 64 KiB). */
  compressAbove: z.number().int().nonnegative().default(65_536),
  /** Values larger than this leave the row for the backend (default 64 KiB). */
  inlineLimit: z.number().int().nonnegative().default(65_536),
}).strict().refine((x) => x.backend !== 'filesystem' || x.path, { message: 'the filesystem XCom backend needs "path": a folder every worker and triggerer can reach' });

const roleSchema = z.enum(['viewer', 'admin']);

/** The web UI and REST API: who may log in, and how. Passwords are scrypt hashes (`updraft users hash-password`). */
const apiSchema = z.object({
  /** `none` lets anyone in as admin, and is refused unless the server binds a loopback address. */
  auth: z.enum(['password', 'none']).default('password'),
  host: z.string().min(1).optional(),
  port: z.number().int().min(0).max(65535).optional(),
  users: z.array(z.object({ username: z.string().min(1), role: roleSchema, password: z.string().startsWith('scrypt$', 'password must be a scrypt hash made by `updraft users hash-password`') }).strict()).default([]),
  tokens: z.array(z.object({ name: z.string().min(1), role: roleSchema, hash: z.string().startsWith('scrypt$', 'hash must be made by `updraft users hash-password`') }).strict()).default([]),
  /** How long a login lasts. */
  sessionTtl: durationSchema.optional(),
}).strict();

const fileSchema = z.object({
  $schema: z.string().optional(),
  dagsFolder: z.string().optional(),
  dataDir: z.string().optional(),
  workerSlots: z.number().int().positive().optional(),
  queues: z.array(z.string().min(1)).optional(),
  heartbeat: durationSchema.optional(),
  zombieThreshold: durationSchema.optional(),
  triggererHealthThreshold: durationSchema.optional(),
  idleTransactionTimeout: durationSchema.optional(),
  maxMapLength: z.number().int().positive().optional(),
  /** Deployment-wide cap on running runs; -1 (default) for none, 0 starts nothing. */
  maxConcurrentRuns: z.number().int().min(-1).optional(),
  runTagConcurrencyLimits: z.array(tagLimitSchema).optional(),
  /** Pools created (or resized) when a scheduler or standalone starts. */
  pools: z.record(z.string().min(1), poolSchema).optional(),
  /** A custom secrets backend, asked first: a module exporting createSecretsBackend(options). */
  secretsBackend: z.object({ module: z.string().min(1), options: z.record(z.string(), z.unknown()).optional() }).strict().optional(),
  /** A local JSON or YAML file of connections and variables, asked before the environment. */
  secretsFile: z.string().min(1).optional(),
  /** How long a process reuses a connection or variable it looked up. */
  secretsCacheTtl: durationSchema.optional(),
  /** The key that seals connections and variables when UPDRAFT_SECRET_KEY is not set. */
  secretKeyFile: z.string().min(1).optional(),
  xcom: xcomSchema.optional(),
  /** Task logs: a byte cap per try, and a folder to write them to instead of the database. */
  logs: z.object({ maxBytesPerTry: z.number().int().positive().optional(), folder: z.string().min(1).optional() }).strict().optional(),
  /** The port `standalone` serves GET /health on (127.0.0.1); 0 turns it off. */
  healthPort: z.number().int().min(0).max(65535).optional(),
  api: apiSchema.optional(),
}).strict();

const envSchema = z.object({
  DATABASE_URL: z.string().url('DATABASE_URL must be a URL like postgres://user@host:5432/db').optional(),
  UPDRAFT_DATA_DIR: z.string().optional(),
  UPDRAFT_DAGS_FOLDER: z.string().optional(),
  UPDRAFT_WORKER_SLOTS: z.coerce.number().int().positive().optional(),
  UPDRAFT_HEARTBEAT: durationSchema.optional(),
  UPDRAFT_ZOMBIE_THRESHOLD: durationSchema.optional(),
  UPDRAFT_QUEUES: z.string().optional(),
  UPDRAFT_TRIGGERER_HEALTH_THRESHOLD: durationSchema.optional(),
  UPDRAFT_IDLE_TRANSACTION_TIMEOUT: durationSchema.optional(),
  UPDRAFT_MAX_MAP_LENGTH: z.coerce.number().int().positive().optional(),
  UPDRAFT_MAX_CONCURRENT_RUNS: z.coerce.number().int().min(-1).optional(),
  UPDRAFT_SECRETS_FILE: z.string().optional(),
  UPDRAFT_SECRET_KEY_FILE: z.string().optional(),
  UPDRAFT_XCOM_PATH: z.string().optional(),
  UPDRAFT_LOG_MAX_BYTES_PER_TRY: z.coerce.number().int().positive().optional(),
  UPDRAFT_LOG_FOLDER: z.string().optional(),
  UPDRAFT_HEALTH_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  UPDRAFT_API_AUTH: z.enum(['password', 'none']).optional(),
});

export interface XComConfig {
  readonly backend: 'database' | 'filesystem';
  readonly path: string | null;
  readonly compressAbove: number;
  readonly inlineLimit: number;
}

export interface PoolConfig {
  readonly slots: number;
  readonly includeDeferred: boolean;
  readonly description?: string;
}

export type ApiRole = z.infer<typeof roleSchema>;

export interface ApiConfig {
  readonly auth: 'password' | 'none';
  /** Bind address of `api-server` (default 127.0.0.1). */
  readonly host: string;
  /** Port of `api-server`; `standalone` serves the UI on healthPort unless this is set. */
  readonly port: number | null;
  readonly users: readonly { readonly username: string; readonly role: ApiRole; readonly password: string }[];
  readonly tokens: readonly { readonly name: string; readonly role: ApiRole; readonly hash: string }[];
  readonly sessionTtlMs: number;
}

export interface UpdraftConfig {
  readonly databaseUrl: string | null;
  readonly dataDir: string;
  readonly dagsFolder: string;
  readonly workerSlots: number;
  readonly heartbeatMs: number;
  readonly zombieThresholdMs: number;
  readonly queues: readonly string[];
  readonly triggererHealthThresholdMs: number;
  /**
   * PostgreSQL ends a session of ours left idle inside a transaction this long, so a process
   * cut off mid-transaction (a partition) cannot hold row locks the others wait on.
   */
  readonly idleTransactionTimeoutMs: number;
  readonly maxMapLength: number;
  readonly maxConcurrentRuns: number;
  readonly runTagConcurrencyLimits: readonly TagLimit[];
  readonly pools: Readonly<Record<string, PoolConfig>>;
  readonly secretsBackend: { readonly module: string; readonly options: Readonly<Record<string, unknown>> } | null;
  readonly secretsFile: string | null;
  readonly secretsCacheTtlMs: number;
  readonly secretKeyFile: string;
  readonly xcom: XComConfig;
  /** Task logs: bytes kept per try, and the folder they are written to (null: the database). */
  readonly logs: { readonly maxBytesPerTry: number; readonly folder: string | null };
  /** Where `standalone` serves the web UI, REST API and GET /health on 127.0.0.1; 0: not at all. */
  readonly healthPort: number;
  readonly api: ApiConfig;
  /** The config file read, if any. */
  readonly configFile: string | null;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): UpdraftConfig {
  const fileConfig = readConfigFile(env, cwd);
  const f = fileConfig.values;
  const parsed = envSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')));
  if (!parsed.success) throw new ConfigError(`invalid environment: ${formatZodIssues(parsed.error)}`);
  const e = parsed.data;
  const dataDir = e.UPDRAFT_DATA_DIR ?? f.dataDir ?? '.updraft';
  // Paths in the config file are relative to the file; others to the working directory.
  const baseDir = fileConfig.file ? path.dirname(fileConfig.file) : cwd;
  return Object.freeze({
    databaseUrl: e.DATABASE_URL ?? null,
    dataDir,
    dagsFolder: e.UPDRAFT_DAGS_FOLDER ?? f.dagsFolder ?? 'dags',
    workerSlots: e.UPDRAFT_WORKER_SLOTS ?? f.workerSlots ?? 16,
    heartbeatMs: e.UPDRAFT_HEARTBEAT ?? f.heartbeat ?? 5000,
    zombieThresholdMs: e.UPDRAFT_ZOMBIE_THRESHOLD ?? f.zombieThreshold ?? 30_000,
    queues: Object.freeze(e.UPDRAFT_QUEUES ? e.UPDRAFT_QUEUES.split(',').map((q) => q.trim()).filter(Boolean) : (f.queues ?? ['default'])),
    triggererHealthThresholdMs: e.UPDRAFT_TRIGGERER_HEALTH_THRESHOLD ?? f.triggererHealthThreshold ?? 30_000,
    idleTransactionTimeoutMs: e.UPDRAFT_IDLE_TRANSACTION_TIMEOUT ?? f.idleTransactionTimeout ?? 30_000,
    maxMapLength: e.UPDRAFT_MAX_MAP_LENGTH ?? f.maxMapLength ?? 10_000,
    healthPort: e.UPDRAFT_HEALTH_PORT ?? f.healthPort ?? 8080,
    maxConcurrentRuns: e.UPDRAFT_MAX_CONCURRENT_RUNS ?? f.maxConcurrentRuns ?? -1,
    runTagConcurrencyLimits: Object.freeze(f.runTagConcurrencyLimits ?? []),
    pools: Object.freeze(f.pools ?? {}),
    secretsBackend: f.secretsBackend ? Object.freeze({ module: f.secretsBackend.module, options: Object.freeze(f.secretsBackend.options ?? {}) }) : null,
    secretsFile: resolveFrom(baseDir, e.UPDRAFT_SECRETS_FILE ?? f.secretsFile),
    secretsCacheTtlMs: f.secretsCacheTtl ?? 10_000,
    secretKeyFile: resolveFrom(baseDir, e.UPDRAFT_SECRET_KEY_FILE ?? f.secretKeyFile) ?? path.resolve(cwd, dataDir, 'secret.key'),
    xcom: Object.freeze({
      backend: f.xcom?.backend ?? (e.UPDRAFT_XCOM_PATH ? 'filesystem' : 'database'),
      path: resolveFrom(baseDir, e.UPDRAFT_XCOM_PATH ?? f.xcom?.path),
      compressAbove: f.xcom?.compressAbove ?? 65_536,
      inlineLimit: f.xcom?.inlineLimit ?? 65_536,
    }),
    logs: Object.freeze({
      maxBytesPerTry: e.UPDRAFT_LOG_MAX_BYTES_PER_TRY ?? f.logs?.maxBytesPerTry ?? 4 * 1024 * 1024,
      folder: resolveFrom(baseDir, e.UPDRAFT_LOG_FOLDER ?? f.logs?.folder),
    }),
    api: Object.freeze({
      auth: e.UPDRAFT_API_AUTH ?? f.api?.auth ?? 'password',
      host: f.api?.host ?? '127.0.0.1',
      port: f.api?.port ?? null,
      users: Object.freeze(f.api?.users ?? []),
      tokens: Object.freeze(f.api?.tokens ?? []),
      sessionTtlMs: f.api?.sessionTtl ?? 12 * 3600_000,
    }),
    configFile: fileConfig.file,
  });
}

function resolveFrom(baseDir: string, p: string | undefined): string | null {
  return p ? path.resolve(baseDir, p) : null;
}

function readConfigFile(env: NodeJS.ProcessEnv, cwd: string): { file: string | null; values: z.output<typeof fileSchema> } {
  const explicit = env.UPDRAFT_CONFIG;
  const file = path.resolve(cwd, explicit || 'updraft.config.json');
  if (!existsSync(file)) {
    if (explicit) throw new ConfigError(`UPDRAFT_CONFIG points to ${file}, which does not exist`);
    return { file: null, values: {} };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`${file}: ${formatZodIssues(parsed.error)}`);
  return { file, values: parsed.data };
}
