/** `updraft connections test` for `http`: one GET or HEAD to the base URL or the `test_path`, no retries. */
import type { Connection, ConnectionTestResult } from 'updraft';
import { HttpHook } from './hook.ts';

export async function testHttpConnection(conn: Connection, signal: AbortSignal): Promise<ConnectionTestResult> {
  const hook = new HttpHook(conn);
  const method = hook.extra.test_method ?? 'GET';
  const started = Date.now();
  try {
    const res = await hook.run(hook.extra.test_path ?? '', { method, signal, retry: { maxAttempts: 1 }, responseType: 'bytes', maxResponseSize: 1024 * 1024 });
    return { ok: true, message: `${method} ${res.url} answered ${res.status} in ${Date.now() - started} ms` };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}
