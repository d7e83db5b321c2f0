/**
 * The `google_cloud_platform` connection type (alias `bigquery`). Extras: `project`,
 * `location`; credentials as `keyfile_dict` (service-account JSON, masked) or `key_path`, or
 * neither for Application Default Credentials; `api_endpoint` for Updraft's BigQuery emulator
 * (no credentials at all: the client never probes the metadata server); `num_retries` (the
 * client's own retries, default 3; 0 turns them off).
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { maskSecret, registerConnectionType, type Connection, type ConnectionTestResult } from 'updraft';

export const GCP_DEFAULT_CONN_ID = 'google_cloud_default';

const bool = z.preprocess((v) => (v === 'false' || v === '0' ? false : v === 'true' || v === '1' ? true : v), z.boolean());

export const gcpExtraSchema = z.object({
  project: z.string().min(1).optional(),
  location: z.string().min(1).optional(),
  keyfile_dict: z.union([z.string().min(1), z.record(z.string(), z.unknown())]).optional(),
  key_path: z.string().min(1).optional(),
  api_endpoint: z.string().url().optional(),
  impersonation_chain: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
  num_retries: z.coerce.number().int().min(0).max(10).default(3),
  /** The client retries 5xx, 408 and 429 itself unless this is false. */
  auto_retry: bool.default(true),
  /** `updraft standalone` starts Updraft's emulator at `api_endpoint` (a loopback address) when nothing answers there. */
  start_emulator: bool.default(false),
}).strict();

export type GcpExtra = z.output<typeof gcpExtraSchema>;

/** What the client needs, resolved from a connection. */
export interface BigQueryTarget {
  connId: string;
  projectId: string;
  location?: string;
  apiEndpoint?: string;
  credentials?: Record<string, unknown>;
  keyFilename?: string;
  autoRetry: boolean;
  maxRetries: number;
}

export function resolveBigQueryTarget(conn: Connection): BigQueryTarget {
  const extra = gcpExtraSchema.parse(conn.extra ?? {});
  const where = `connection "${conn.connId}"`;
  if (extra.impersonation_chain) {
    throw new Error(`${where}: impersonation_chain is not supported by Updraft's BigQuery provider yet; give the service account's own key (keyfile_dict or key_path)`);
  }
  if (extra.keyfile_dict && extra.key_path) throw new Error(`${where}: give keyfile_dict or key_path, not both`);
  let credentials: Record<string, unknown> | undefined;
  if (extra.keyfile_dict) {
    try {
      credentials = typeof extra.keyfile_dict === 'string' ? JSON.parse(extra.keyfile_dict) as Record<string, unknown> : extra.keyfile_dict;
    } catch (err) {
      throw new Error(`${where}: keyfile_dict is not JSON (${(err as Error).message}); paste the service account's key file as it is`);
    }
    if (typeof credentials.private_key === 'string') maskSecret(credentials.private_key);
  }
  if (extra.key_path) {
    try {
      readFileSync(extra.key_path);
    } catch (err) {
      throw new Error(`${where}: cannot read key_path ${extra.key_path}: ${(err as Error).message}`);
    }
  }
  const projectId = extra.project ?? (credentials?.project_id as string | undefined) ?? conn.schema ?? undefined;
  if (!projectId) throw new Error(`${where} has no project; set the extra "project" (or a keyfile_dict with project_id)`);
  return {
    connId: conn.connId, projectId, location: extra.location, apiEndpoint: extra.api_endpoint?.replace(/\/+$/, ''),
    credentials, keyFilename: extra.key_path, autoRetry: extra.auto_retry && extra.num_retries > 0, maxRetries: extra.num_retries,
  };
}

export function registerGcpConnectionType(test: (conn: Connection, signal: AbortSignal) => Promise<ConnectionTestResult>): void {
  registerConnectionType({
    type: 'google_cloud_platform', aliases: ['bigquery', 'gcp'], label: 'Google Cloud', defaultConnId: GCP_DEFAULT_CONN_ID,
    extraSchema: gcpExtraSchema as unknown as z.ZodObject<z.ZodRawShape>,
    test: (conn, { signal }) => test(conn, signal),
  });
}
