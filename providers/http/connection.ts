/**
 * The `http` connection type. `host` may carry its scheme (`https://api.example.com`) or not
 * (`api.example.com`, with `schema: https`; http when neither says). `login` and `password`
 * are basic auth. Extras: default `headers`, a bearer `token`, `timeout` in seconds, `verify`
 * (TLS; false only with a warning), a `proxy`, a `rate_limit`, a `retry` policy and the
 * `test_path` that `updraft connections test` requests.
 */
import { z } from 'zod';
import { registerConnectionType, type Connection, type ConnectionTestResult } from 'updraft';
import { retryPolicySchema } from './retry.ts';
import { rateLimitSchema } from './rate-limit.ts';

export const HTTP_DEFAULT_CONN_ID = 'http_default';

const bool = z.preprocess((v) => (v === 'false' || v === '0' ? false : v === 'true' || v === '1' ? true : v), z.boolean());

export const httpExtraSchema = z.object({
  headers: z.preprocess((v) => (typeof v === 'string' ? JSON.parse(v) : v), z.record(z.string(), z.string())).optional(),
  token: z.string().min(1).optional(),
  /** Seconds to wait for response headers, and between body chunks. */
  timeout: z.coerce.number().positive().optional(),
  verify: bool.optional(),
  proxy: z.string().url().optional(),
  rate_limit: rateLimitSchema.optional(),
  retry: retryPolicySchema.partial().optional(),
  max_response_size: z.coerce.number().int().positive().optional(),
  test_path: z.string().optional(),
  test_method: z.enum(['GET', 'HEAD']).optional(),
}).strict();

export type HttpExtra = z.output<typeof httpExtraSchema>;

/** The connection's base URL: scheme, host, port and the path prefix a host may carry. */
export function baseUrlOf(conn: Pick<Connection, 'host' | 'schema' | 'port' | 'connId'>): URL {
  if (!conn.host) throw new Error(`http connection "${conn.connId}" has no host; set it to a URL such as https://api.example.com`);
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(conn.host);
  const url = new URL(hasScheme ? conn.host : `${conn.schema === 'https' ? 'https' : 'http'}://${conn.host}`);
  if (conn.port) url.port = String(conn.port);
  return url;
}

/** Join an endpoint to the base URL. An absolute URL (a Link header's) is used as it is. */
export function urlFor(base: URL, endpoint: string): URL {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint)) return new URL(endpoint);
  const prefix = base.pathname.replace(/\/+$/, '');
  const rel = endpoint.replace(/^\/+/, '');
  const url = new URL(base.origin);
  const [pathPart, search] = rel.split('?', 2);
  url.pathname = `${prefix}/${pathPart}`;
  if (search) url.search = search;
  return url;
}

export function registerHttpConnectionType(test: (conn: Connection, signal: AbortSignal) => Promise<ConnectionTestResult>): void {
  registerConnectionType({
    type: 'http', label: 'HTTP', defaultConnId: HTTP_DEFAULT_CONN_ID,
    extraSchema: httpExtraSchema as unknown as z.ZodObject<z.ZodRawShape>,
    test: (conn, { signal }) => test(conn, signal),
  });
}
