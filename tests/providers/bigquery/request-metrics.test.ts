/**
 * BigQueryHook counts its API calls by REST method in `updraft_provider_requests_total`
 * (provider bigquery), with `ok` or the HTTP status of the error, against Updraft's emulator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processRegistry } from '../../../core/index.ts';
import { BigQueryHook, resolveBigQueryTarget, startEmulator, type Emulator } from '../../../providers/bigquery/index.ts';
import { sample } from '../../helpers/metrics.ts';

let emu: Emulator;
beforeAll(async () => { emu = await startEmulator({ jobDurationMs: 0 }); });
afterAll(async () => { await emu?.close(); });

const count = async (operation: string, status: string) =>
  sample(await processRegistry.metrics(), 'updraft_provider_requests_total', { provider: 'bigquery', operation, status }) ?? 0;

describe('BigQuery request metrics', () => {
  it('counts jobs.insert, jobs.get, jobs.getQueryResults and tables.get, errors by status', async () => {
    const hook = new BigQueryHook(resolveBigQueryTarget({
      connId: 'metrics_bq', connType: 'google_cloud_platform', description: null, host: null, schema: null, login: null, password: null, port: null,
      extra: { project: 'proj', location: 'US', api_endpoint: emu.url },
    }));
    const names = [['jobs.insert', 'ok'], ['jobs.get', 'ok'], ['jobs.getQueryResults', 'ok'], ['jobs.get', '404'], ['tables.get', 'ok']] as const;
    const before = await Promise.all(names.map(([op, status]) => count(op, status)));
    const job = await hook.insertJob({ query: { query: 'select 1 as one', useLegacySql: false } });
    await hook.getJob(job.jobReference.jobId);
    expect((await hook.getQueryResults(job.jobReference.jobId)).rows).toEqual([{ one: 1 }]);
    await expect(hook.getJob('no_such_job')).rejects.toMatchObject({ code: 404 });
    expect(await hook.tableExists('nowhere', 'nothing')).toBe(false);
    const after = await Promise.all(names.map(([op, status]) => count(op, status)));
    expect(after.map((n, i) => n - before[i])).toEqual([1, 1, 1, 1, 1]);
  });
});
