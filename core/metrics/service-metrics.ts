/**
 * A service's metrics and its `/metrics` endpoint. The scheduler, the worker and the triggerer
 * each extend ServiceMetrics with their own metrics in `registry`; serving adds Node's default
 * process metrics under the service's prefix and the process-wide registry (provider requests,
 * DAG parse times, run durations), all on GET /metrics, in Prometheus text.
 */
import { createServer, type Server } from 'node:http';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { processRegistry } from './process-metrics.ts';

export class ServiceMetrics {
  readonly registry = new Registry();
  /** This service's metrics, the default process metrics and the process-wide ones, as one registry. */
  private served: Registry | null = null;
  private server: Server | null = null;

  /** `prefix` names the default process metrics, e.g. `updraft_worker_`. */
  constructor(private readonly prefix: string) {}

  /** What GET /metrics serves (the default process metrics are collected from the first call on). */
  exposition(): Registry {
    if (!this.served) {
      collectDefaultMetrics({ register: this.registry, prefix: this.prefix });
      this.served = Registry.merge([this.registry, processRegistry]);
    }
    return this.served;
  }

  /** The text GET /metrics answers with. */
  text(): Promise<string> {
    return this.exposition().metrics();
  }

  /** Serve GET /metrics on `host:port` (loopback by default); port 0 picks a free one. */
  serve(port: number, host = '127.0.0.1'): Promise<Server> {
    return serveMetrics(this.exposition(), port, host).then((server) => (this.server = server));
  }

  /** Stop serving (if serving); open connections are closed. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A plain HTTP server answering GET /metrics from `registry`, and 404 to anything else. */
export function serveMetrics(registry: Registry, port: number, host = '127.0.0.1'): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('try GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${err.message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
