/**
 * Updraft's BigQuery provider (`updraft/providers/bigquery`), on @google-cloud/bigquery: the
 * `google_cloud_platform` connection type (alias `bigquery`), BigQueryHook, the deferrable
 * BigQueryInsertJobOperator with reattach, coalesced job polling, the table-existence sensor,
 * and a local emulator (`updraft bigquery-emulator`). Importing it registers them.
 */
import { registerGcpConnectionType } from './connection.ts';
import { testBigQueryConnection } from './connection-test.ts';
import type { Emulator, EmulatorOptions } from './emulator/server.ts';

registerGcpConnectionType(testBigQueryConnection);

export { GCP_DEFAULT_CONN_ID, gcpExtraSchema, resolveBigQueryTarget, type GcpExtra, type BigQueryTarget } from './connection.ts';
export { BigQueryHook, BigQueryJobError, clientFor, describeError, summaryOf, type BigQueryJobSummary, type BigQueryJob, type BigQueryErrorProto, type ListJobsOptions } from './hook.ts';
export { JobPoller, pollerFor, allPollers, DEFAULT_POLL_CAP_MS, type PollMode } from './poller.ts';
export { BigQueryInsertJobTrigger, BigQueryTableExistenceTrigger, type BigQueryJobEvent, type BigQueryJobTriggerKwargs } from './triggers.ts';
export {
  BigQueryInsertJobOperator, bigQueryJobTask, jobIdFor, sanitizeJobId, sanitizeLabel, runInsertJob, completeInsertJob,
  type BigQueryInsertJobOperatorOptions, type BigQueryJobTaskOptions, type InsertJobSpec,
} from './operators.ts';
export { BigQueryTableExistenceSensor, type BigQueryTableExistenceSensorOptions } from './sensors.ts';
export type { Emulator, EmulatorOptions } from './emulator/server.ts';

/**
 * Start Updraft's local BigQuery-compatible server. Loaded on first use: DuckDB, which it runs
 * SQL in, stays out of every process that only talks to BigQuery.
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const server = await import('./emulator/server.ts');
  return server.startEmulator(options);
}
