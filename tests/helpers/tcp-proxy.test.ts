/** The fault-injection TCP proxy: forwarding, partitions that hold (not drop) traffic, latency, close. */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { connect, createServer, type Server, type Socket } from 'node:net';
import postgres from 'postgres';
import { TcpProxy } from './tcp-proxy.ts';

/** Long enough to trust that held traffic is really held, short enough to keep the suite quick. */
const ABSENCE_MS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A client socket with everything it has received, and whether the peer ended or closed it. */
interface Peer {
  socket: Socket;
  received(): string;
  ended(): boolean;
  closed(): boolean;
}

function track(socket: Socket): Peer {
  let data = '';
  let ended = false;
  let closed = false;
  socket.on('data', (d: Buffer) => { data += d.toString(); });
  socket.on('end', () => { ended = true; });
  socket.on('close', () => { closed = true; });
  socket.on('error', () => {});
  return { socket, received: () => data, ended: () => ended, closed: () => closed };
}

async function dial(port: number): Promise<Peer> {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  const peer = track(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return peer;
}

describe('TcpProxy', () => {
  let echo: Server;
  /** The echo server's side of each connection, in accept order, and what each has received. */
  const upstream: Socket[] = [];
  const got = new Map<Socket, string>();
  let proxy: TcpProxy | undefined;
  const peers: Peer[] = [];

  beforeAll(async () => {
    echo = createServer((s) => {
      upstream.push(s);
      got.set(s, '');
      s.on('data', (d: Buffer) => got.set(s, got.get(s) + d.toString()));
      s.on('error', () => {});
      s.pipe(s);
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  });
  afterEach(async () => {
    for (const p of peers.splice(0)) p.socket.destroy();
    await proxy?.close();
    proxy = undefined;
  });
  afterAll(async () => {
    for (const s of upstream) s.destroy();
    await new Promise((r) => echo.close(r));
  });

  const echoPort = () => (echo.address() as { port: number }).port;
  const open = async (port: number) => {
    const p = await dial(port);
    peers.push(p);
    return p;
  };

  it('forwards bytes both ways and rewrites URLs to point at itself', async () => {
    proxy = await TcpProxy.start({ host: '127.0.0.1', port: echoPort() });
    const c = await open(proxy.port);
    c.socket.write('hello');
    await vi.waitFor(() => expect(c.received()).toBe('hello'));
    expect(proxy.connections).toBe(1);
    expect(proxy.rewrite('postgres://postgres@127.0.0.1:5432/test?sslmode=disable'))
      .toBe(`postgres://postgres@127.0.0.1:${proxy.port}/test?sslmode=disable`);
    expect(proxy.rewrite('http://example.com/a')).toBe(`http://127.0.0.1:${proxy.port}/a`);
  });

  it('holds bytes, closes and new connections during a partition and delivers them in order on heal', async () => {
    proxy = await TcpProxy.start({ host: '127.0.0.1', port: echoPort() });
    const a = await open(proxy.port);
    const b = await open(proxy.port);
    a.socket.write('0');
    b.socket.write('0');
    await vi.waitFor(() => expect(a.received() + b.received()).toBe('00'));
    const [aUp, bUp] = upstream.slice(-2);
    const acceptedBefore = upstream.length;

    proxy.blackhole();
    expect(proxy.partitioned).toBe(true);
    a.socket.write('1');
    a.socket.write('2');
    aUp.write('S'); // server -> client is held too
    a.socket.write('3');
    bUp.end(); // the server's FIN is hidden by the partition
    const late = await open(proxy.port); // accepted by the proxy, but nothing reaches upstream
    late.socket.write('late');
    await sleep(ABSENCE_MS);
    expect(got.get(aUp)).toBe('0');
    expect(a.received()).toBe('0');
    expect(b.ended()).toBe(false);
    expect(late.received()).toBe('');
    expect(upstream.length).toBe(acceptedBefore);
    expect(a.closed() || b.closed() || late.closed()).toBe(false);
    expect(proxy.connections).toBe(3);

    proxy.heal();
    expect(proxy.partitioned).toBe(false);
    // 'S' left the server before the client's 1, 2, 3 were echoed; each direction keeps its order.
    await vi.waitFor(() => expect(a.received()).toBe('0S123'));
    await vi.waitFor(() => expect(b.ended()).toBe(true));
    await vi.waitFor(() => expect(late.received()).toBe('late'));
  });

  it('adds delayMs per direction', async () => {
    proxy = await TcpProxy.start({ host: '127.0.0.1', port: echoPort() }, { delayMs: 50 });
    const c = await open(proxy.port);
    const t0 = performance.now();
    c.socket.write('ping');
    await vi.waitFor(() => expect(c.received()).toBe('ping'), { interval: 2 });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
  });

  it('close() stops listening and ends every connection', async () => {
    proxy = await TcpProxy.start({ host: '127.0.0.1', port: echoPort() });
    const c = await open(proxy.port);
    c.socket.write('x');
    await vi.waitFor(() => expect(c.received()).toBe('x'));
    const up = upstream.at(-1)!;
    const proxy0 = proxy;
    const port = proxy.port;
    await proxy.close();
    proxy = undefined;
    // The client dialed half-open, so it sees the FIN as 'end' without closing itself.
    await vi.waitFor(() => expect(c.ended()).toBe(true));
    await vi.waitFor(() => expect(up.destroyed).toBe(true));
    expect(proxy0.connections).toBe(0);
    await expect(dial(port)).rejects.toThrow(/ECONNREFUSED/);
  });
});

const PG_URL = process.env.UPDRAFT_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function pgReachable(): Promise<boolean> {
  const sql = postgres(PG_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => undefined);
  }
}

describe.skipIf(!(await pgReachable()))('TcpProxy in front of PostgreSQL', () => {
  it('a query under blackhole waits, and completes after heal', async () => {
    const target = new URL(PG_URL);
    const proxy = await TcpProxy.start({ host: target.hostname, port: Number(target.port || 5432) });
    const sql = postgres(proxy.rewrite(PG_URL), { max: 1, onnotice: () => {} });
    try {
      expect(await sql<{ n: number }[]>`select 1 as n`).toEqual([{ n: 1 }]);

      proxy.blackhole();
      let settled = false;
      const pending = sql<{ n: number }[]>`select 2 as n`.execute();
      void pending.then(() => { settled = true; }, () => { settled = true; });
      await sleep(ABSENCE_MS);
      expect(settled).toBe(false);

      proxy.heal();
      expect(await pending).toEqual([{ n: 2 }]);
    } finally {
      await sql.end({ timeout: 1 });
      await proxy.close();
    }
  });
});
