/**
 * HttpHook against a real node HTTP server on loopback: bodies, the retry policy (Retry-After,
 * backoff, idempotency), timeouts and aborts, pagination, the rate limit, the size cap and
 * what reaches the log.
 */
import diagnostics from 'node:diagnostics_channel';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { validateConnection, masker, type TaskLogger } from '../../../core/index.ts';
import {
  HttpHook, HttpStatusError, HttpRequestError, HttpResponseTooLarge, closeHttpPools, nextLink, retryDelayMs, retryPolicySchema,
} from '../../../providers/http/index.ts';
import { TestHttpServer, json } from '../../helpers/http-server.ts';

let server: TestHttpServer;
beforeAll(async () => { server = await TestHttpServer.start(); });
afterAll(async () => { await closeHttpPools(); await server.close(); });
beforeEach(() => server.reset());

function capture(): { log: TaskLogger; lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (m: string, ...a: unknown[]) => { lines.push(masker.mask(`${level} ${a.reduce<string>((s, v) => s.replace(/%[sdj]/, String(v)), m)}`)); };
  return { log: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') }, lines };
}

function hookFor(extra: Record<string, unknown> = {}, fields: Record<string, unknown> = {}, log?: TaskLogger): HttpHook {
  const conn = validateConnection({ connId: 'test_api', connType: 'http', host: server.url, extra, ...fields }, 'test');
  return new HttpHook(conn, { log });
}

const fastRetry = { baseDelayMs: 20, maxDelayMs: 100 };

describe('HttpHook', () => {
  it('returns JSON, text and bytes bodies with status, headers and url', async () => {
    server.route('/json', (_q, res) => json(res, 200, { a: 1 }))
      .route('/text', (_q, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('hello'))
      .route('/bin', (_q, res) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.from([0, 1, 2, 255])));
    const hook = hookFor();
    const j = await hook.run('/json', { query: { q: 'x y', n: [1, 2] } });
    expect(j).toMatchObject({ status: 200, body: { a: 1 } });
    expect(j.headers['content-type']).toBe('application/json');
    expect(j.url).toBe(`${server.url}/json?q=x+y&n=1&n=2`);
    expect((await hook.run('text')).body).toBe('hello');
    const bin = await hook.run<Buffer>('bin', { responseType: 'bytes' });
    expect([...bin.body]).toEqual([0, 1, 2, 255]);
  });

  it('joins the endpoint under a base path, sends JSON and form bodies, and the connection headers', async () => {
    server.route('/api/v2/items', (q, res) => json(res, 201, { got: q.body, type: q.headers['content-type'], team: q.headers['x-team'] }));
    const hook = hookFor({ headers: { 'x-team': 'data' } }, { host: `${server.url}/api/v2/` });
    expect((await hook.run('items', { method: 'POST', json: { k: 1 } })).body).toEqual({ got: '{"k":1}', type: 'application/json', team: 'data' });
    expect((await hook.run('/items', { method: 'POST', data: { a: 'b c' } })).body).toEqual({ got: 'a=b+c', type: 'application/x-www-form-urlencoded', team: 'data' });
  });

  it('waits at least Retry-After (seconds) on a 429, then succeeds', async () => {
    server.route('/limited', (_q, res, n) => (n === 1 ? json(res, 429, { error: 'slow down' }, { 'retry-after': '1' }) : json(res, 200, { ok: true })));
    const { log, lines } = capture();
    const res = await hookFor({}, {}, log).run('/limited', { retry: fastRetry });
    expect(res.body).toEqual({ ok: true });
    const [first, second] = server.hits('/limited');
    expect(second.at - first.at).toBeGreaterThanOrEqual(990);
    expect(lines.some((l) => /retry 1 of 4 in \d+ ms \(status 429, Retry-After 1 s\)/.test(l))).toBe(true);
  });

  it('waits at least Retry-After given as an HTTP date', async () => {
    server.route('/date', (_q, res, n) => (n === 1
      ? json(res, 429, {}, { 'retry-after': new Date(Date.now() + 2_000).toUTCString() })
      : json(res, 200, { ok: true })));
    await hookFor().run('/date', { retry: fastRetry });
    const [first, second] = server.hits('/date');
    // An HTTP date has whole seconds: the wait is at least 1 s and at most about 2 s.
    expect(second.at - first.at).toBeGreaterThanOrEqual(1_000);
  });

  it('retries a 503 then returns the 200', async () => {
    server.route('/flaky', (_q, res, n) => (n < 3 ? json(res, 503, { down: true }) : json(res, 200, { up: true })));
    expect((await hookFor().run('/flaky', { retry: fastRetry })).body).toEqual({ up: true });
    expect(server.hits('/flaky')).toHaveLength(3);
  });

  it('fails with the status, URL and body once the attempts run out, and does not retry a 400', async () => {
    server.route('/down', (_q, res) => json(res, 502, { reason: 'gateway' }));
    const err = await hookFor().run('/down', { retry: { ...fastRetry, maxAttempts: 3 } }).catch((e) => e);
    expect(err).toBeInstanceOf(HttpStatusError);
    expect(err.message).toBe(`GET ${server.url}/down answered 502: {"reason":"gateway"} (after 3 attempts)`);
    server.route('/bad', (_q, res) => json(res, 400, { reason: 'bad' }));
    await expect(hookFor().run('/bad', { retry: fastRetry })).rejects.toThrow(/answered 400/);
    expect(server.hits('/bad')).toHaveLength(1);
  });

  it('does not retry a POST unless the caller opts in', async () => {
    server.route('/post', (_q, res) => json(res, 503, {}));
    await expect(hookFor().run('/post', { method: 'POST', json: {}, retry: fastRetry })).rejects.toBeInstanceOf(HttpStatusError);
    expect(server.hits('/post')).toHaveLength(1);
    await expect(hookFor().run('/post', { method: 'POST', json: {}, retry: { ...fastRetry, maxAttempts: 3, retryNonIdempotent: true } })).rejects.toThrow(/after 3 attempts/);
    expect(server.hits('/post')).toHaveLength(4);
  });

  it('retries a refused connection until the server appears', async () => {
    const port = await freePort();
    const conn = validateConnection({ connId: 'late', connType: 'http', host: '127.0.0.1', port }, 'test');
    const hook = new HttpHook(conn);
    let late: TestHttpServer | undefined;
    const starting = new Promise<void>((resolve) => setTimeout(async () => {
      late = await TestHttpServer.start(port);
      late.route('/ready', (_q, res) => json(res, 200, { ready: true }));
      resolve();
    }, 400));
    try {
      const res = await hook.run('/ready', { retry: { baseDelayMs: 200, maxDelayMs: 400, maxAttempts: 30 } });
      expect(res.body).toEqual({ ready: true });
    } finally {
      await starting;
      await late?.close();
    }
  });

  it('gives up on a connection refused with the reason when retries are off', async () => {
    const port = await freePort();
    const hook = new HttpHook(validateConnection({ connId: 'none', connType: 'http', host: `http://127.0.0.1:${port}` }, 'test'));
    const err = await hook.run('/x', { retry: { maxAttempts: 1 } }).catch((e) => e);
    expect(err).toBeInstanceOf(HttpRequestError);
    expect(err.message).toBe(`GET http://127.0.0.1:${port}/x failed: ECONNREFUSED`);
  });

  it('times out waiting for headers, and stops at once when the signal aborts', async () => {
    server.route('/hang', () => { /* never answers */ });
    const err = await hookFor().run('/hang', { timeoutMs: 300, retry: { maxAttempts: 1 } }).catch((e) => e);
    expect(err).toBeInstanceOf(HttpRequestError);
    expect(err.message).toMatch(/UND_ERR_HEADERS_TIMEOUT/);
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('task killed')), 200);
    await expect(hookFor().run('/hang', { signal: controller.signal })).rejects.toThrow('task killed');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('refuses a body over maxResponseSize and reads a 5 MB one under it', async () => {
    const big = 'x'.repeat(5 * 1024 * 1024);
    server.route('/big', (_q, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(big));
    server.route('/chunked', (_q, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.write(big); res.end(big); });
    expect(((await hookFor().run<string>('/big')).body).length).toBe(big.length);
    await expect(hookFor().run('/big', { maxResponseSize: 1024 })).rejects.toBeInstanceOf(HttpResponseTooLarge);
    await expect(hookFor({ max_response_size: 6 * 1024 * 1024 }).run('/chunked')).rejects.toThrow(/larger than maxResponseSize \(6291456 bytes\)/);
    // The pool still works after a body was cut off.
    server.route('/small', (_q, res) => json(res, 200, { ok: 1 }));
    expect((await hookFor().run('/small')).body).toEqual({ ok: 1 });
  });

  it('pages with a cursor in the body', async () => {
    server.route('/cursor', (q, res) => {
      const at = Number(q.url.searchParams.get('cursor') ?? 0);
      json(res, 200, { items: [at], next: at < 4 ? String(at + 1) : null });
    });
    const items: unknown[] = [];
    for await (const page of hookFor().paginate<{ items: number[] }>('/cursor', { query: { size: 1 }, pagination: { style: 'cursor', cursorPath: 'next', param: 'cursor' } })) items.push(...page.body.items);
    expect(items).toEqual([0, 1, 2, 3, 4]);
    expect(server.hits('/cursor').map((r) => r.url.search)).toEqual(['?size=1', '?size=1&cursor=1', '?size=1&cursor=2', '?size=1&cursor=3', '?size=1&cursor=4']);
  });

  it('pages with a function, and stops at maxPages', async () => {
    server.route('/pages', (q, res) => json(res, 200, { page: Number(q.url.searchParams.get('page') ?? 1) }));
    const seen: number[] = [];
    const pages = hookFor().paginate<{ page: number }>('/pages', { maxPages: 3, next: (res) => ({ query: { page: (res.body as { page: number }).page + 1 } }) });
    for await (const p of pages) seen.push(p.body.page);
    expect(seen).toEqual([1, 2, 3]);
  });

  it('reads rel="next" from a Link header among other relations', () => {
    expect(nextLink('<https://a.test/x?page=1>; rel="prev", <https://a.test/x?page=3>; rel="next"', 'https://a.test/x')).toBe('https://a.test/x?page=3');
    expect(nextLink('</items?after=9>; rel=next', 'https://a.test/items')).toBe('https://a.test/items?after=9');
    expect(nextLink('<https://a.test/x?page=1>; rel="last"', 'https://a.test/x')).toBeNull();
  });

  it('keeps 100 calls at 20/s to about 5 s, never starting more than the budget allows', async () => {
    server.route('/rl', (_q, res) => json(res, 200, {}));
    const hook = hookFor({ rate_limit: { rate: 20, burst: 1 } }, { connId: 'rate_limited' });
    // When each request goes out (undici's own signal), where the limit is kept: arrivals at a server
    // in this same process can bunch whenever the machine stalls its event loop.
    const sent: number[] = [];
    const onCreate = (m: unknown) => { if ((m as { request: { path: string } }).request.path.startsWith('/rl')) sent.push(Date.now()); };
    diagnostics.subscribe('undici:request:create', onCreate);
    const started = Date.now();
    try {
      await Promise.all(Array.from({ length: 100 }, () => hook.run('/rl')));
    } finally {
      diagnostics.unsubscribe('undici:request:create', onCreate);
    }
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(4_900);
    expect(elapsed).toBeLessThan(15_000);
    expect(server.hits('/rl')).toHaveLength(100);
    expect(sent).toHaveLength(100);
    // In every window of 1 s, at most 20 requests go out (+1 for timer granularity at the edges).
    for (let i = 0; i < sent.length; i++) expect(sent.filter((t) => t >= sent[i] && t < sent[i] + 1000).length).toBeLessThanOrEqual(21);
  });

  it('holds every caller while the server says the budget is spent', async () => {
    server.route('/budget', (_q, res, n) => json(res, 200, {}, n === 1 ? { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '1' } : {}));
    const hook = hookFor({}, { connId: 'budgeted' });
    await hook.run('/budget');
    await hook.run('/budget');
    const [a, b] = server.hits('/budget');
    expect(b.at - a.at).toBeGreaterThanOrEqual(950);
  });

  it('never logs the bearer token or the basic-auth password', async () => {
    server.route('/secure', (q, res) => json(res, 200, { auth: q.headers.authorization }));
    const { log, lines } = capture();
    const bearer = await hookFor({ token: 'tok-9f8e7d6c5b4a' }, { connId: 'bearer' }, log).run('/secure', { query: { api_key: 'key-in-query-123' } });
    expect(bearer.body).toEqual({ auth: 'Bearer tok-9f8e7d6c5b4a' });
    const basic = await hookFor({}, { connId: 'basic', login: 'svc', password: 'pa55-w0rd-xyz' }, log).run('/secure');
    expect(basic.body).toEqual({ auth: `Basic ${Buffer.from('svc:pa55-w0rd-xyz').toString('base64')}` });
    expect(lines.length).toBeGreaterThanOrEqual(2);
    const all = lines.join('\n');
    expect(all).toContain('api_key=***');
    for (const secret of ['tok-9f8e7d6c5b4a', 'key-in-query-123', 'pa55-w0rd-xyz', Buffer.from('svc:pa55-w0rd-xyz').toString('base64')]) expect(all).not.toContain(secret);
  });

  it('computes the delay as the larger of Retry-After and full-jitter backoff', () => {
    const policy = retryPolicySchema.parse({ baseDelayMs: 100, maxDelayMs: 1_000 });
    expect(retryDelayMs(policy, 1, null, () => 0.999)).toBe(99);
    expect(retryDelayMs(policy, 3, null, () => 0.5)).toBe(200);
    expect(retryDelayMs(policy, 10, null, () => 0.999)).toBe(999);
    expect(retryDelayMs(policy, 1, 5_000, () => 0.999)).toBe(5_000);
    expect(retryDelayMs(policy, 1, null, () => 0)).toBe(0);
  });
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
