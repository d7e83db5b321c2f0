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
});

export interface PoolConfig {
  readonly slots: number;
  readonly includeDeferred: boolean;
  readonly description?: string;
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
  /** The config file read, if any. */
  readonly configFile: string | null;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): UpdraftConfig {
  const fileConfig = readConfigFile(env, cwd);
  const f = fileConfig.values;
  const parsed = envSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')));
  if (!parsed.success) throw new ConfigError(`invalid environment: ${formatZodIssues(parsed.error)}`);
  const e = parsed.data;
  return Object.freeze({
    databaseUrl: e.DATABASE_URL ?? null,
    dataDir: e.UPDRAFT_DATA_DIR ?? f.dataDir ?? '.updraft',
    dagsFolder: e.UPDRAFT_DAGS_FOLDER ?? f.dagsFolder ?? 'dags',
    workerSlots: e.UPDRAFT_WORKER_SLOTS ?? f.workerSlots ?? 16,
    heartbeatMs: e.UPDRAFT_HEARTBEAT ?? f.heartbeat ?? 5000,
    zombieThresholdMs: e.UPDRAFT_ZOMBIE_THRESHOLD ?? f.zombieThreshold ?? 30_000,
    queues: Object.freeze(e.UPDRAFT_QUEUES ? e.UPDRAFT_QUEUES.split(',').map((q) => q.trim()).filter(Boolean) : (f.queues ?? ['default'])),
    triggererHealthThresholdMs: e.UPDRAFT_TRIGGERER_HEALTH_THRESHOLD ?? f.triggererHealthThreshold ?? 30_000,
    idleTransactionTimeoutMs: e.UPDRAFT_IDLE_TRANSACTION_TIMEOUT ?? f.idleTransactionTimeout ?? 30_000,
    maxMapLength: e.UPDRAFT_MAX_MAP_LENGTH ?? f.maxMapLength ?? 10_000,
    maxConcurrentRuns: e.UPDRAFT_MAX_CONCURRENT_RUNS ?? f.maxConcurrentRuns ?? -1,
    runTagConcurrencyLimits: Object.freeze(f.runTagConcurrencyLimits ?? []),
    pools: Object.freeze(f.pools ?? {}),
    configFile: fileConfig.file,
  });
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
