/**
 * Configuration, resolved once at start-up from the environment into a frozen object.
 * Bad values fail fast with every problem listed, not at first use.
 */
import { z } from 'zod';
import { ConfigError } from './errors.ts';
import { durationSchema } from './authoring/duration.ts';
import { formatZodIssues } from './authoring/operator.ts';

const envSchema = z.object({
  DATABASE_URL: z.string().url('DATABASE_URL must be a URL like postgres://user@host:5432/db').optional(),
  UPDRAFT_DATA_DIR: z.string().default('.updraft'),
  UPDRAFT_DAGS_FOLDER: z.string().default('dags'),
  UPDRAFT_WORKER_SLOTS: z.coerce.number().int().positive().default(16),
  UPDRAFT_HEARTBEAT: durationSchema.default(5000),
  UPDRAFT_ZOMBIE_THRESHOLD: durationSchema.default(30_000),
  UPDRAFT_QUEUES: z.string().default('default'),
  UPDRAFT_TRIGGERER_HEALTH_THRESHOLD: durationSchema.default(30_000),
  UPDRAFT_MAX_MAP_LENGTH: z.coerce.number().int().positive().default(10_000),
});

export interface UpdraftConfig {
  readonly databaseUrl: string | null;
  readonly dataDir: string;
  readonly dagsFolder: string;
  readonly workerSlots: number;
  readonly heartbeatMs: number;
  readonly zombieThresholdMs: number;
  readonly queues: readonly string[];
  readonly triggererHealthThresholdMs: number;
  readonly maxMapLength: number;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): UpdraftConfig {
  const parsed = envSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')));
  if (!parsed.success) throw new ConfigError(`invalid environment: ${formatZodIssues(parsed.error)}`);
  const e = parsed.data;
  return Object.freeze({
    databaseUrl: e.DATABASE_URL ?? null,
    dataDir: e.UPDRAFT_DATA_DIR,
    dagsFolder: e.UPDRAFT_DAGS_FOLDER,
    workerSlots: e.UPDRAFT_WORKER_SLOTS,
    heartbeatMs: e.UPDRAFT_HEARTBEAT,
    zombieThresholdMs: e.UPDRAFT_ZOMBIE_THRESHOLD,
    queues: Object.freeze(e.UPDRAFT_QUEUES.split(',').map((q) => q.trim()).filter(Boolean)),
    triggererHealthThresholdMs: e.UPDRAFT_TRIGGERER_HEALTH_THRESHOLD,
    maxMapLength: e.UPDRAFT_MAX_MAP_LENGTH,
  });
}
