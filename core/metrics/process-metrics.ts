/**
 * Process-wide metrics (prom-client): what any service in this process may observe, kept in
 * one registry that every service's `/metrics` endpoint serves next to its own. Provider hooks
 * count their requests here (so a worker's endpoint shows the requests of the tasks it ran, a
 * triggerer's those of its triggers), the DAG bag records parse times, and whichever component
 * closes a run records its duration.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export const processRegistry = new Registry();

/** Requests providers make: `provider` (http, sftp, bigquery), `operation` (GET, stat, jobs.get…), `status`. */
export const providerRequests = new Counter({
  name: 'updraft_provider_requests_total',
  help: 'Requests to outside services made by provider hooks, by provider, operation and outcome status',
  labelNames: ['provider', 'operation', 'status'] as const,
  registers: [processRegistry],
});

export const dagFileParseSeconds = new Histogram({
  name: 'updraft_dag_file_parse_seconds',
  help: 'Time to import one DAG file (each new or changed file the DAG bag loads)',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [processRegistry],
});

export const dagBagRefreshSeconds = new Gauge({
  name: 'updraft_dagbag_refresh_seconds',
  help: 'Duration of the last DAG folder refresh that imported or dropped a file',
  registers: [processRegistry],
});

export const dagBagImportErrors = new Gauge({
  name: 'updraft_dagbag_import_errors',
  help: 'DAG files that failed to import at the last refresh',
  registers: [processRegistry],
});

export const dagRunDuration = new Histogram({
  name: 'updraft_dag_run_duration_seconds',
  help: 'Run start → end, observed by the process that closed the run (sum over schedulers and workers)',
  labelNames: ['state'] as const,
  buckets: [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400],
  registers: [processRegistry],
});

/** Count one provider request; `status` is an HTTP status, `ok`, or a short error name. */
export function countProviderRequest(provider: string, operation: string, status: string | number): void {
  providerRequests.inc({ provider, operation, status: String(status) });
}

/** Record the durations of runs just closed (after their transaction committed). */
export function observeRunsClosed(rows: readonly { state: string; durationS: number | null }[]): void {
  for (const r of rows) if (r.durationS !== null && r.durationS >= 0) dagRunDuration.observe({ state: r.state }, r.durationS);
}
