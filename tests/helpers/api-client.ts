/**
 * A small client of the REST API for tests and benches: keeps the session cookie and the CSRF
 * token as a browser would, or sends a bearer token; reads Server-Sent Events from a stream.
 */
export interface ApiAnswer<T = any> {
  status: number;
  body: T;
}

export class ApiClient {
  private cookie: string | null = null;
  csrf: string | null = null;

  constructor(readonly base: string, private readonly token: string | null = null) {}

  async login(username: string, password: string): Promise<ApiAnswer> {
    const res = await this.request('POST', '/api/v1/auth/login', { username, password });
    if (res.status === 200) this.csrf = res.body.csrfToken;
    return res;
  }

  get<T = any>(path: string): Promise<ApiAnswer<T>> {
    return this.request('GET', path);
  }

  /** A change: sends the CSRF token unless `csrf: false`. */
  send<T = any>(method: 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown, opts: { csrf?: boolean } = {}): Promise<ApiAnswer<T>> {
    return this.request(method, path, body, opts.csrf !== false);
  }

  headers(withCsrf = false): Record<string, string> {
    return {
      ...(this.cookie ? { cookie: this.cookie } : {}),
      ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
      ...(withCsrf && this.csrf ? { 'x-csrf-token': this.csrf } : {}),
    };
  }

  private async request(method: string, path: string, body?: unknown, withCsrf = false): Promise<ApiAnswer> {
    const res = await fetch(`${this.base}${path}`, {
      method, headers: { ...this.headers(withCsrf), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const set = res.headers.getSetCookie().find((c) => c.startsWith('updraft_session='));
    if (set) this.cookie = set.split(';')[0];
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch { /* not JSON */ }
    return { status: res.status, body: parsed };
  }

  /** Open an SSE stream; events arrive in `events` as they come. */
  async events(path: string): Promise<{ events: { event: string; data: any; at: number }[]; next(match: (e: { event: string; data: any }) => boolean, timeoutMs?: number): Promise<{ event: string; data: any; at: number }>; close(): void }> {
    const controller = new AbortController();
    const res = await fetch(`${this.base}${path}`, { headers: this.headers(), signal: controller.signal });
    if (res.status !== 200 || !res.body) throw new Error(`SSE ${path}: status ${res.status}`);
    const events: { event: string; data: any; at: number }[] = [];
    const waiters = new Set<() => void>();
    void (async () => {
      const decoder = new TextDecoder();
      let buf = '';
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const event = /^event: ?(.*)$/m.exec(block)?.[1] ?? 'message';
            const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.replace(/^data: ?/, '')).join('\n');
            events.push({ event, data: data ? JSON.parse(data) : null, at: Date.now() });
            for (const w of waiters) w();
          }
        }
      } catch { /* closed */ }
    })();
    return {
      events,
      next(match, timeoutMs = 30_000) {
        return new Promise((resolve, reject) => {
          const check = () => {
            const found = events.find(match);
            if (!found) return;
            waiters.delete(check);
            clearTimeout(timer);
            resolve(found);
          };
          const timer = setTimeout(() => {
            waiters.delete(check);
            reject(new Error(`no matching SSE event on ${path} within ${timeoutMs} ms; got ${events.map((e) => e.event).join(', ')}`));
          }, timeoutMs);
          waiters.add(check);
          check();
        });
      },
      close: () => controller.abort(),
    };
  }
}
