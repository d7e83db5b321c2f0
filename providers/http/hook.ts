/**
 * HttpHook: requests to one `http` connection's base URL through the process's shared undici
 * pool, with the connection's auth and headers, the retry policy, the rate limit, a response
 * size cap and the caller's AbortSignal. A response comes back as plain data (`status`,
 * `headers`, `url`, `body`), its body always read or dumped so no socket is left waiting.
 *
 *   const http = await HttpHook.create(ctx, 'api');          // in a task
 *   const http = await HttpHook.create(this.runtime, 'api'); // in a trigger
 *   const res = await http.run('v1/items', { query: { q: 'x' } });
 *   for await (const page of http.paginate('v1/items', { pagination: { style: 'link' } })) …
 */
import type { Dispatcher } from 'undici';
import { anySignal, countProviderRequest, isSensitiveKey, maskSecret, type Connection, type TaskLogger } from 'updraft';
import { baseUrlOf, httpExtraSchema, urlFor, HTTP_DEFAULT_CONN_ID, type HttpExtra } from './connection.ts';
import { dispatcherFor } from './dispatchers.ts';
import { TokenBucket, sleep } from './rate-limit.ts';
import { connectionErrorCode, isIdempotent, parseRetryAfter, resolveRetryPolicy, retryDelayMs, type RetryPolicy, type RetryPolicyInput } from './retry.ts';
import { HttpRequestError, HttpResponseTooLarge, HttpStatusError } from './errors.ts';
import { firstQuery, paginateSchema, paginatorFor, stopsAfter, type PageRequest, type PaginateOptions } from './paginators.ts';

export const DEFAULT_TIMEOUT_MS = 300_000;
export const DEFAULT_MAX_RESPONSE_SIZE = 64 * 1024 * 1024;

export type QueryValue = string | number | boolean | null | undefined | readonly (string | number | boolean)[];
export type ResponseType = 'auto' | 'json' | 'text' | 'bytes';

export interface HttpRequestOptions {
  method?: string;
  query?: Record<string, QueryValue>;
  headers?: Record<string, string>;
  /** A JSON body (sets content-type). */
  json?: unknown;
  /** A form body (an object) or a raw text body. */
  data?: string | Record<string, string | number | boolean>;
  body?: string | Uint8Array;
  /** `auto` (default): JSON when the content type says so, else text. */
  responseType?: ResponseType;
  signal?: AbortSignal;
  retry?: RetryPolicyInput;
  /** Headers and between-chunk timeout, in ms; default the connection's `timeout`, else 300 s. */
  timeoutMs?: number;
  maxResponseSize?: number;
  /** Statuses that return normally instead of throwing HttpStatusError (2xx always do). */
  acceptStatuses?: readonly number[];
}

export interface HttpResponse<B = unknown> {
  status: number;
  headers: Record<string, string | string[]>;
  url: string;
  body: B;
}

export interface HookSource {
  connection(connId: string): Promise<Connection>;
  readonly log?: TaskLogger;
  readonly signal?: AbortSignal;
}

export interface PaginateCall extends HttpRequestOptions {
  /** A built-in or registered style, as plain data (what a trigger can carry). */
  pagination?: PaginateOptions['pagination'];
  /** Or a function: the next request's changes, or null when done. */
  next?: (response: HttpResponse, request: PageRequest) => Partial<PageRequest> | null;
  maxPages?: number;
  stopWhen?: PaginateOptions['stopWhen'];
}

const buckets = new Map<string, TokenBucket>();
const quiet: TaskLogger = { info() {}, warn() {}, error() {}, debug() {} };

function appendQuery(url: URL, query: Record<string, unknown> | undefined): void {
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v === undefined || v === null) continue;
    for (const item of Array.isArray(v) ? v : [v]) url.searchParams.append(k, String(item));
  }
}

/** The URL as it may be logged: query values under sensitive keys are masked. */
export function loggableUrl(url: URL): string {
  const copy = new URL(url);
  copy.username = '';
  copy.password = '';
  for (const key of [...copy.searchParams.keys()]) if (isSensitiveKey(key)) copy.searchParams.set(key, '***');
  return copy.toString().replace(/%2A%2A%2A/g, '***');
}

function headersOf(raw: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(raw)) if (v !== undefined) out[k.toLowerCase()] = v;
  return out;
}

export class HttpHook {
  readonly extra: HttpExtra;
  readonly baseUrl: URL;
  private readonly authHeaders: Record<string, string> = {};
  private readonly bucket: TokenBucket;
  /** The connection's retry policy, parsed once: most requests bring no policy of their own. */
  private connPolicy: RetryPolicy | undefined;

  constructor(readonly conn: Connection, private readonly options: { log?: TaskLogger; signal?: AbortSignal } = {}) {
    this.extra = httpExtraSchema.parse(conn.extra ?? {});
    this.baseUrl = baseUrlOf({ ...conn, schema: conn.connType === 'https' ? 'https' : conn.schema });
    if (this.extra.token) {
      this.authHeaders.authorization = `Bearer ${this.extra.token}`;
      maskSecret(this.extra.token);
    } else if (conn.login) {
      const basic = Buffer.from(`${conn.login}:${conn.password ?? ''}`).toString('base64');
      this.authHeaders.authorization = `Basic ${basic}`;
      maskSecret(basic);
    }
    if (conn.password) maskSecret(conn.password);
    if (this.extra.verify === false) this.log.warn('connection "%s": TLS certificate verification is off (verify: false)', conn.connId);
    const key = `${conn.connId}|${JSON.stringify(this.extra.rate_limit ?? null)}`;
    let bucket = buckets.get(key);
    if (!bucket) buckets.set(key, bucket = new TokenBucket(this.extra.rate_limit ?? null));
    this.bucket = bucket;
  }

  /** A hook for a task (`ctx`) or a trigger (`this.runtime`): its connection lookup, log and signal. */
  static async create(source: HookSource, connId = HTTP_DEFAULT_CONN_ID): Promise<HttpHook> {
    return new HttpHook(await source.connection(connId), { log: source.log, signal: source.signal });
  }

  private get log(): TaskLogger {
    return this.options.log ?? quiet;
  }

  /** One request, retried by the policy; throws HttpStatusError on a status not accepted. */
  async run<B = unknown>(endpoint: string, req: HttpRequestOptions = {}): Promise<HttpResponse<B>> {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = urlFor(this.baseUrl, endpoint);
    appendQuery(url, req.query);
    const shown = loggableUrl(url);
    const policy = req.retry ? resolveRetryPolicy(this.extra.retry, req.retry) : (this.connPolicy ??= resolveRetryPolicy(this.extra.retry));
    const retryable = policy.retryNonIdempotent || isIdempotent(method);
    const signal = anySignal(req.signal, this.options.signal);
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      await this.bucket.take(signal);
      const t0 = Date.now();
      let outcome: { response: HttpResponse<B> } | { status: number; headers: Record<string, string | string[]>; snippet: string } | { error: unknown };
      try {
        outcome = await this.attempt<B>(method, url, req, signal);
      } catch (error) {
        countProviderRequest('http', method, signal?.aborted ? 'aborted' : 'error');
        if (signal?.aborted) throw signal.reason ?? error;
        if (error instanceof HttpResponseTooLarge) throw error;
        outcome = { error };
      }
      const ms = Date.now() - t0;
      if (!('error' in outcome)) countProviderRequest('http', method, 'response' in outcome ? outcome.response.status : outcome.status);
      if ('response' in outcome) {
        this.log.info('%s %s → %d in %d ms', method, shown, outcome.response.status, ms);
        return outcome.response;
      }
      const code = 'error' in outcome ? connectionErrorCode(outcome.error) : null;
      const reason = 'error' in outcome ? (code ?? (outcome.error as Error).message) : `status ${outcome.status}`;
      this.log[attempt === 1 ? 'info' : 'warn']('%s %s → %s in %d ms', method, shown, reason, ms);
      const canRetry = retryable && attempt < policy.maxAttempts
        && ('error' in outcome ? policy.onConnectionError && code !== null : policy.statuses.includes(outcome.status));
      const retryAfter = 'headers' in outcome ? parseRetryAfter(outcome.headers['retry-after']) : null;
      if ('headers' in outcome && outcome.status === 429 && retryAfter !== null) this.bucket.closeUntil(Date.now() + retryAfter);
      const delay = canRetry ? retryDelayMs(policy, attempt, retryAfter) : 0;
      const withinDeadline = Date.now() - started + delay <= policy.deadlineMs;
      if (!canRetry || !withinDeadline) {
        const why = canRetry ? `; the next retry (in ${delay} ms) would pass the ${policy.deadlineMs} ms deadline` : '';
        if ('error' in outcome) throw new HttpRequestError(method, shown, `${reason}${why}`, attempt, { cause: outcome.error });
        throw new HttpStatusError(method, shown, outcome.status, `${outcome.snippet}${why}`, attempt);
      }
      this.log.warn('%s %s: retry %d of %d in %d ms (%s%s)', method, shown, attempt, policy.maxAttempts - 1, delay, reason,
        retryAfter !== null ? `, Retry-After ${Math.ceil(retryAfter / 1000)} s` : '');
      await sleep(delay, signal);
    }
  }

  private async attempt<B>(method: string, url: URL, req: HttpRequestOptions, signal: AbortSignal | undefined) {
    const headers: Record<string, string> = { ...this.extra.headers, ...this.authHeaders, ...req.headers };
    let body: string | Uint8Array | undefined = req.body;
    if (req.json !== undefined) {
      body = JSON.stringify(req.json);
      headers['content-type'] ??= 'application/json';
    } else if (req.data !== undefined) {
      if (typeof req.data === 'string') body = req.data;
      else {
        body = new URLSearchParams(Object.entries(req.data).map(([k, v]): [string, string] => [k, String(v)])).toString();
        headers['content-type'] ??= 'application/x-www-form-urlencoded';
      }
    }
    const timeout = req.timeoutMs ?? (this.extra.timeout ? this.extra.timeout * 1000 : DEFAULT_TIMEOUT_MS);
    const dispatcher: Dispatcher = dispatcherFor({ origin: url.origin, verify: this.extra.verify !== false, proxy: this.extra.proxy ?? null });
    const res = await dispatcher.request({
      origin: url.origin, path: `${url.pathname}${url.search}`, method: method as Dispatcher.HttpMethod, headers, body,
      signal, headersTimeout: timeout, bodyTimeout: timeout,
    });
    const resHeaders = headersOf(res.headers as Record<string, string | string[] | undefined>);
    this.bucket.observe(resHeaders);
    const ok = (res.statusCode >= 200 && res.statusCode < 400) || req.acceptStatuses?.includes(res.statusCode);
    if (!ok) {
      const text = await readBody(res.body, 4096, true).then((b) => b.toString('utf8')).catch(() => '');
      return { status: res.statusCode, headers: resHeaders, snippet: text.replace(/\s+/g, ' ').trim().slice(0, 300) };
    }
    const limit = req.maxResponseSize ?? this.extra.max_response_size ?? DEFAULT_MAX_RESPONSE_SIZE;
    const declared = Number(resHeaders['content-length']);
    if (declared > limit) {
      await res.body.dump();
      throw new HttpResponseTooLarge(loggableUrl(url), limit);
    }
    const bytes = await readBody(res.body, limit, false).catch((err) => {
      throw err === TOO_LARGE ? new HttpResponseTooLarge(loggableUrl(url), limit) : err;
    });
    return { response: { status: res.statusCode, headers: resHeaders, url: url.toString(), body: decodeBody(bytes, resHeaders, req.responseType ?? 'auto') as B } };
  }

  /** Pages as an async iterator: each response in turn, until the paginator says done or maxPages. */
  async *paginate<B = unknown>(endpoint: string, call: PaginateCall): AsyncGenerator<HttpResponse<B>, void, void> {
    const { pagination, next, maxPages, stopWhen, ...req } = call;
    if (!pagination === !next) throw new Error('paginate needs exactly one of `pagination` (a built-in or registered style) or `next` (a function)');
    const options = paginateSchema.parse({ pagination: pagination ?? { style: 'link' }, maxPages, stopWhen });
    const step = next ?? paginatorFor(options.pagination);
    let request: PageRequest = { endpoint, query: pagination ? firstQuery(options.pagination, req.query ?? {}) : { ...req.query } };
    for (let page = 1; page <= options.maxPages; page++) {
      const res = await this.run<B>(request.endpoint, { ...req, query: request.query as Record<string, QueryValue> });
      yield res;
      if (stopsAfter(options, res)) return;
      const change = step(res as HttpResponse, request, {});
      if (!change) return;
      request = { endpoint: change.endpoint ?? request.endpoint, query: change.query ?? request.query };
    }
  }
}

const TOO_LARGE = Symbol('too large');

/** Read a body up to `limit` bytes; past it, destroy the stream (truncate: keep what fits). */
async function readBody(body: AsyncIterable<Uint8Array> & { destroy(): void }, limit: number, truncate: boolean): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      if (truncate) break;
      throw TOO_LARGE;
    }
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }
  return Buffer.concat(chunks);
}

function decodeBody(bytes: Buffer, headers: Record<string, string | string[]>, type: ResponseType): unknown {
  if (type === 'bytes') return bytes;
  const text = bytes.toString('utf8');
  const contentType = String(headers['content-type'] ?? '');
  if (type === 'json' || (type === 'auto' && /[/+]json\b/i.test(contentType))) return text.length ? JSON.parse(text) : null;
  return text;
}
