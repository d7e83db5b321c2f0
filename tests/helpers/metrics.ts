/** Read a service's /metrics over HTTP and pick values out of the Prometheus text. */

/** GET http://127.0.0.1:port/metrics, checking the status and content type. */
export async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics on :${port} answered ${res.status}: ${await res.text()}`);
  if (!res.headers.get('content-type')?.startsWith('text/plain')) throw new Error(`unexpected content type ${res.headers.get('content-type')}`);
  return res.text();
}

/**
 * The value of the sample `name` whose labels include `labels` (summed when several match), or
 * undefined when none does.
 */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let total: number | undefined;
  for (const line of text.split('\n')) {
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).some(([k, v]) => have[k] !== v)) continue;
    total = (total ?? 0) + Number(m[3] === '+Inf' ? Infinity : m[3]);
  }
  return total;
}
