/**
 * Connection types. A provider registers its type once, at import: a zod schema for its
 * extras (keys it doesn't list are refused), its default conn id (`http_default`, ...) and a
 * `test()` that `updraft connections test` runs. Types not registered are still accepted,
 * with extras unchecked, as Airflow accepts any conn_type.
 */
import type { z } from 'zod';
import type { Connection } from './connection.ts';

export interface ConnectionTestResult {
  ok: boolean;
  message: string;
}

export interface ConnectionType {
  /** The conn_type, e.g. `http`, `sftp`, `google_cloud_platform`. */
  readonly type: string;
  /** Other names that mean the same type (`bigquery` for `google_cloud_platform`). */
  readonly aliases?: readonly string[];
  readonly label?: string;
  readonly defaultConnId: string;
  readonly extraSchema: z.ZodObject<z.ZodRawShape>;
  /** A harmless call that proves the connection works (a HEAD, a stat, a dry run). */
  test?(conn: Connection, options: { signal: AbortSignal }): Promise<ConnectionTestResult>;
}

const types = new Map<string, ConnectionType>();

export function registerConnectionType(type: ConnectionType): void {
  for (const name of [type.type, ...(type.aliases ?? [])]) types.set(name.replace(/-/g, '_'), type);
}

export function connectionType(name: string): ConnectionType | undefined {
  return types.get(name.replace(/-/g, '_'));
}

export function connectionTypes(): ConnectionType[] {
  return [...new Set(types.values())];
}
