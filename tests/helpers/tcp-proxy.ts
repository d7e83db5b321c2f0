/**
 * A TCP proxy on 127.0.0.1 that a test controls, put between a service and PostgreSQL (or an
 * SSH or HTTP server) to inject network faults. `blackhole()` is a partition, not a reset: every
 * socket stays open, nothing is forwarded either way, and what arrives meanwhile (bytes, FINs,
 * errors, new connections) is held in order and delivered on `heal()`, as TCP retransmission
 * would. `delayMs` adds one-way latency per chunk, preserving order.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

/** Held bytes per direction before the source is paused (backpressure, not a limit). */
const HIGH_WATER = 1 << 20;

type Item =
  | { kind: 'data'; chunk: Buffer; at: number }
  | { kind: 'end' | 'destroy'; at: number };

/** One direction of one connection: src's bytes and its end, queued until they may reach dst. */
class Pipe {
  private readonly queue: Item[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingDrain = false;
  private finished = false;

  constructor(
    private readonly proxy: TcpProxy,
    private readonly src: Socket,
    /** Null until the upstream socket exists and is connected. */
    private dst: () => Socket | null,
  ) {
    src.on('data', (chunk: Buffer) => {
      this.queued += chunk.length;
      if (this.queued > HIGH_WATER) src.pause();
      this.push({ kind: 'data', chunk, at: Date.now() + proxy.delayMs });
    });
    src.on('end', () => this.push({ kind: 'end', at: Date.now() + proxy.delayMs }));
    // A close without a clean end (reset, error, destroy) tears the other side down too.
    src.on('close', (hadError: boolean) => {
      if (hadError || !src.readableEnded) this.push({ kind: 'destroy', at: Date.now() + proxy.delayMs });
    });
  }

  private push(item: Item): void {
    if (this.finished) return;
    if (item.kind === 'destroy') this.finished = true;
    this.queue.push(item);
    this.pump();
  }

  /** Deliver whatever may go now; called on every arrival, timer, drain, heal and connect. */
  pump(): void {
    const dst = this.dst();
    if (this.proxy.partitioned || this.proxy.closed || !dst || this.timer || this.waitingDrain) return;
    while (this.queue.length) {
      if (dst.destroyed) {
        this.queue.length = 0;
        return;
      }
      if (dst.writableNeedDrain) {
        this.waitingDrain = true;
        dst.once('drain', () => {
          this.waitingDrain = false;
          this.pump();
        });
        return;
      }
      const item = this.queue[0];
      const wait = item.at - Date.now();
      if (wait > 0) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, wait);
        return;
      }
      this.queue.shift();
      if (item.kind === 'data') {
        this.queued -= item.chunk.length;
        dst.write(item.chunk);
        if (this.queued <= HIGH_WATER && this.src.isPaused()) this.src.resume();
      } else if (item.kind === 'end') {
        dst.end();
      } else {
        dst.destroy();
      }
    }
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }
}

/** A client socket, its upstream socket (opened lazily while partitioned) and both directions. */
class Link {
  private upstream: Socket | null = null;
  private upstreamReady = false;
  private readonly up: Pipe;
  private down: Pipe | null = null;

  constructor(private readonly proxy: TcpProxy, readonly client: Socket, private readonly onGone: () => void) {
    client.setNoDelay(true);
    client.on('error', () => { /* surfaces as 'close'; the pipe tears down upstream */ });
    client.once('close', () => this.checkGone());
    this.up = new Pipe(proxy, client, () => (this.upstreamReady ? this.upstream : null));
  }

  /** Open the upstream connection (deferred while partitioned: the SYN would not get through). */
  open(): void {
    if (this.upstream || this.proxy.closed || this.client.destroyed) return;
    const upstream = connect({ host: this.proxy.target.host, port: this.proxy.target.port, allowHalfOpen: true });
    this.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on('error', () => { /* surfaces as 'close'; the pipe tears down the client */ });
    upstream.once('connect', () => {
      this.upstreamReady = true;
      this.up.pump();
    });
    upstream.once('close', () => this.checkGone());
    this.down = new Pipe(this.proxy, upstream, () => this.client);
  }

  /** Called on heal: connect if still needed, then deliver what was held. */
  heal(): void {
    this.open();
    this.up.pump();
    this.down?.pump();
    this.checkGone();
  }

  destroy(): void {
    this.up.dispose();
    this.down?.dispose();
    this.client.destroy();
    this.upstream?.destroy();
  }

  /** Gone once both sockets are closed (a client closed mid-partition still owes upstream its close). */
  private checkGone(): void {
    if (this.client.destroyed && (!this.upstream || this.upstream.destroyed)) {
      this.up.dispose();
      this.down?.dispose();
      this.onGone();
    }
  }
}

export class TcpProxy {
  private partition = false;
  private isClosed = false;
  /** Links not yet fully closed, including ones whose client left during a partition. */
  private readonly links = new Set<Link>();
  private openClients = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly target: { readonly host: string; readonly port: number },
    readonly delayMs: number,
  ) {}

  static async start(target: { host: string; port: number }, opts: { delayMs?: number } = {}): Promise<TcpProxy> {
    // Half-open both ways, so one side's FIN is forwarded as a FIN rather than closing both.
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as { port: number };
    const proxy = new TcpProxy(server, port, { host: target.host, port: target.port }, opts.delayMs ?? 0);
    server.on('connection', (client) => proxy.accept(client));
    return proxy;
  }

  get partitioned(): boolean {
    return this.partition;
  }

  /** @internal True once close() was called. */
  get closed(): boolean {
    return this.isClosed;
  }

  /** Client connections currently open. */
  get connections(): number {
    return this.openClients;
  }

  /** `url` with its host:port replaced by this proxy's, e.g. for a postgres:// or http:// URL. */
  rewrite(url: string): string {
    const u = new URL(url);
    if (!u.host) throw new Error(`TcpProxy.rewrite: no host:port in ${url}`);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  /** Partition: stop forwarding both ways, keep every socket open, hold what arrives. */
  blackhole(): void {
    this.partition = true;
  }

  /** End the partition: open held connections and deliver held bytes, in order. */
  heal(): void {
    this.partition = false;
    for (const link of [...this.links]) link.heal();
  }

  /** Stop listening and destroy every socket. */
  async close(): Promise<void> {
    this.isClosed = true;
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const link of this.links) link.destroy();
    this.links.clear();
    await closing;
  }

  private accept(client: Socket): void {
    if (this.isClosed) {
      client.destroy();
      return;
    }
    this.openClients++;
    client.once('close', () => this.openClients--);
    const link = new Link(this, client, () => this.links.delete(link));
    this.links.add(link);
    if (!this.partition) link.open();
  }
}
