/**
 * HttpHook counts every attempt in the process-wide `updraft_provider_requests_total`, by
 * method and status (or `error` when no response came), and the count is on any service's
 * /metrics: the triggerer's too, for requests its triggers make.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processRegistry, validateConnection } from '../../../core/index.ts';
import { TriggererMetrics } from '../../../triggerer/index.ts';
import { HttpHook, HttpRequestError, HttpStatusError, closeHttpPools } from '../../../providers/http/index.ts';
import { TestHttpServer, json } from '../../helpers/http-server.ts';
import { freePort } from '../../helpers/ports.ts';
import { sample, scrape } from '../../helpers/metrics.ts';

let server: TestHttpServer;
beforeAll(async () => { server = await TestHttpServer.start(); });
afterAll(async () => { await closeHttpPools(); await server.close(); });

const hookFor = (host: string) => new HttpHook(validateConnection({ connId: 'metrics_api', connType: 'http', host, extra: { retry: { baseDelayMs: 5, maxDelayMs: 10 } } }, 'test'));
const count = async (labels: Record<string, string>) => sample(await processRegistry.metrics(), 'updraft_provider_requests_total', { provider: 'http', ...labels }) ?? 0;

describe('HTTP request metrics', () => {
  it('counts each attempt by method and status, and failures to connect as error', async () => {
    server.route('/ok', (_q, res) => json(res, 200, { ok: true }))
      .route('/flaky', (_q, res, nth) => (nth === 1 ? res.writeHead(503).end('busy') : json(res, 200, {})))
      .route('/missing', (_q, res) => res.writeHead(404).end('no'));
    const before = { ok: await count({ operation: 'GET', status: '200' }), busy: await count({ operation: 'GET', status: '503' }),
      posted: await count({ operation: 'POST', status: '200' }), missing: await count({ operation: 'GET', status: '404' }), error: await count({ operation: 'GET', status: 'error' }) };
    const hook = hookFor(server.url);
    await hook.run('ok');
    await hook.run('ok', { method: 'POST', json: { a: 1 } });
    await hook.run('flaky');
    await expect(hook.run('missing')).rejects.toBeInstanceOf(HttpStatusError);
    const closed = await freePort();
    await expect(hookFor(`http://127.0.0.1:${closed}`).run('ok', { retry: { maxAttempts: 1 } })).rejects.toBeInstanceOf(HttpRequestError);

    expect(await count({ operation: 'GET', status: '200' })).toBe(before.ok + 2);
    expect(await count({ operation: 'GET', status: '503' })).toBe(before.busy + 1);
    expect(await count({ operation: 'POST', status: '200' })).toBe(before.posted + 1);
    expect(await count({ operation: 'GET', status: '404' })).toBe(before.missing + 1);
    expect(await count({ operation: 'GET', status: 'error' })).toBe(before.error + 1);
  });

  it('is served on the triggerer\'s /metrics next to its own metrics', async () => {
    server.route('/ping', (_q, res) => json(res, 200, {}));
    await hookFor(server.url).run('ping');
    const metrics = new TriggererMetrics();
    const port = await freePort();
    await metrics.serve(port);
    try {
      const text = await scrape(port);
      expect(sample(text, 'updraft_provider_requests_total', { provider: 'http', operation: 'GET', status: '200' })).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'updraft_triggers_running')).toBe(0);
      expect(sample(text, 'updraft_triggerer_process_cpu_user_seconds_total')).toBeGreaterThan(0);
    } finally {
      await metrics.close();
    }
  });
});
