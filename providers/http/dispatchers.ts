/**
 * One undici dispatcher per origin (or proxy) and TLS setting, per process: every task on a
 * worker's loop and every trigger in the triggerer that calls the same base URL shares its
 * keep-alive sockets. Pools are never closed while the process lives; `closeHttpPools` is for
 * tests and shutdown.
 */
import { Pool, ProxyAgent, type Dispatcher } from 'undici';

export const CONNECT_TIMEOUT_MS = 10_000;

export interface DispatcherKey {
  origin: string;
  verify: boolean;
  proxy: string | null;
}

const dispatchers = new Map<string, Dispatcher>();

export function dispatcherFor(key: DispatcherKey): Dispatcher {
  const id = `${key.proxy ?? key.origin}|${key.verify}`;
  let d = dispatchers.get(id);
  if (!d) {
    const tls = key.verify ? {} : { rejectUnauthorized: false };
    d = key.proxy
      ? new ProxyAgent({ uri: key.proxy, requestTls: tls, proxyTls: tls, connect: { timeout: CONNECT_TIMEOUT_MS } })
      : new Pool(key.origin, { connect: { timeout: CONNECT_TIMEOUT_MS, ...tls }, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000 });
    dispatchers.set(id, d);
  }
  return d;
}

/** Close every pooled socket (tests, and a process about to exit). */
export async function closeHttpPools(): Promise<void> {
  const all = [...dispatchers.values()];
  dispatchers.clear();
  await Promise.allSettled(all.map((d) => d.close()));
}
