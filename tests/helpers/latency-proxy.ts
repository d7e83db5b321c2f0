/**
 * A latency proxy in its own process: a TcpProxy that delays each chunk by `oneWayMs` in each
 * direction (so the round trip gains twice that), keeping order and applying backpressure.
 * There is no netem here; tests and the bench put it in front of sshd for realistic RTTs.
 *
 *   const proxy = await startLatencyProxy({ host: '127.0.0.1', port: sshd.port }, 10); // 20 ms RTT
 *   … connect to 127.0.0.1:proxy.port …
 *   await proxy.stop();
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TcpProxy } from './tcp-proxy.ts';

const SELF = fileURLToPath(import.meta.url);

export interface LatencyProxy {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

export async function startLatencyProxy(target: { host: string; port: number }, oneWayMs: number): Promise<LatencyProxy> {
  const child = spawn(process.execPath, ['--import', 'tsx', SELF, target.host, String(target.port), String(oneWayMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      const m = /^listening (\d+)$/.exec(line);
      if (m) resolve(Number(m[1]));
      else reject(new Error(`latency proxy: unexpected output ${line}`));
    });
    child.once('exit', (code) => reject(new Error(`latency proxy exited (${code}) before listening`)));
  });
  return {
    port, pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

if (process.argv[1] === SELF) {
  const [host, port, delay] = process.argv.slice(2);
  const proxy = await TcpProxy.start({ host, port: Number(port) }, { delayMs: Number(delay) });
  process.stdout.write(`listening ${proxy.port}\n`);
  process.on('SIGTERM', () => { void proxy.close().finally(() => process.exit(0)); });
}
