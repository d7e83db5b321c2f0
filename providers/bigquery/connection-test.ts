/** `updraft connections test` for `google_cloud_platform`: a dry-run query, which costs nothing and runs nothing. */
import type { Connection, ConnectionTestResult } from 'updraft';
import { resolveBigQueryTarget } from './connection.ts';
import { clientFor } from './hook.ts';

export async function testBigQueryConnection(conn: Connection, signal: AbortSignal): Promise<ConnectionTestResult> {
  const started = Date.now();
  try {
    const target = resolveBigQueryTarget(conn);
    signal.throwIfAborted();
    await clientFor(target).createQueryJob({ query: 'SELECT 1', dryRun: true, location: target.location });
    return { ok: true, message: `dry-run query accepted by ${target.apiEndpoint ?? 'BigQuery'} for project ${target.projectId} in ${Date.now() - started} ms` };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}
