/**
 * A real HTTP server on 127.0.0.1 for provider tests and benches: routes are functions a test
 * sets (and replaces) while the server runs, and every request is recorded with its start time,
 * so a test can count attempts, check spacing and read headers. One per test file.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  path: string;
  url: URL;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

export type Route = (req: SeenRequest, res: ServerResponse, nth: number) => unknown;

export class TestHttpServer {
  readonly requests: SeenRequest[] = [];
  private readonly routes = new Map<string, Route>();
  private readonly counts = new Map<string, number>();

  private constructor(private readonly server: Server, readonly port: number) {}

  static async start(port = 0): Promise<TestHttpServer> {
    let self: TestHttpServer | undefined;
    const server = createServer((req, res) => void self!.handle(req, res));
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
    self = new TestHttpServer(server, (server.address() as AddressInfo).port);
    return self;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Serve `path` (without query) with `route`; the third argument counts calls from 1. */
  route(path: string, route: Route): this {
    this.routes.set(path, route);
    this.counts.set(path, 0);
    return this;
  }

  hits(path: string): SeenRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  reset(): void {
    this.requests.length = 0;
    this.routes.clear();
    this.counts.clear();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', this.url);
    const seen: SeenRequest = { method: req.method ?? 'GET', path: url.pathname, url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
    this.requests.push(seen);
    const route = this.routes.get(url.pathname);
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no route for ${url.pathname}`);
      return;
    }
    const nth = (this.counts.get(url.pathname) ?? 0) + 1;
    this.counts.set(url.pathname, nth);
    try {
      await route(seen, res, nth);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
