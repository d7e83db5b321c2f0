/**
 * The worker's thread pool for sync tasks (piscina), so CPU-bound code never stalls the async
 * tasks sharing the worker's event loop. Aborting a running task terminates its thread,
 * which is how executionTimeout is enforced for sync code.
 */
import { MessageChannel } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { ContextData } from '../authoring/context.ts';
import type { SyncTaskResponse } from './sync-thread-impl.ts';
import type { DeferralFailure } from './invoke.ts';
import type { Lookups } from './task-context.ts';
import { masker } from '../secrets/masker.ts';

/** A lookup request from a task's thread; `flag` is set when the thread is blocked waiting (a *Sync call). */
interface LookupRequest {
  type: 'connection' | 'variable';
  id: number;
  name: string;
  flag?: SharedArrayBuffer;
}

export interface SyncRunOptions {
  fileloc: string;
  fileVersion: string;
  context: ContextData;
  inputs: unknown;
  nextMethod: string | null;
  failure: DeferralFailure | null;
  signal: AbortSignal;
  xcomPull(taskId: string, key: string, mapIndex: number): Promise<unknown>;
  lookups: Lookups;
  /** Templated fields rendered by the worker, set on the thread's operator instance. */
  rendered?: Record<string, unknown> | null;
}

export class SyncPool {
  private readonly pool: Piscina;

  constructor(maxThreads = Math.max(2, availableParallelism())) {
    this.pool = new Piscina({
      filename: fileURLToPath(new URL('./sync-thread.mjs', import.meta.url)),
      minThreads: 1,
      maxThreads,
      idleTimeout: 60_000,
      // Each thread holds one task at a time: a sync task owns its thread until it returns.
      concurrentTasksPerWorker: 1,
    });
  }

  async run(opts: SyncRunOptions): Promise<SyncTaskResponse> {
    const { port1, port2 } = new MessageChannel();
    // Replies to a blocked thread go on their own port, which it reads synchronously.
    const sync = new MessageChannel();
    port1.on('message', async (m: { type: string; id: number; taskId: string; key: string; mapIndex: number } | LookupRequest) => {
      if (m.type === 'xcomPull') {
        const x = m as { id: number; taskId: string; key: string; mapIndex: number };
        const value = await opts.xcomPull(x.taskId, x.key, x.mapIndex).catch(() => undefined);
        port1.postMessage({ type: 'xcom', id: x.id, value });
        return;
      }
      const r = m as LookupRequest;
      let reply: { type: 'lookup'; id: number; value?: unknown; error?: { name: string; message: string }; secrets: string[] };
      try {
        const value = r.type === 'connection' ? await opts.lookups.connection(r.name) : await opts.lookups.variable(r.name);
        // The thread masks its own log lines too, so it learns every secret this process knows.
        reply = { type: 'lookup', id: r.id, value: value && typeof value === 'object' ? { ...value } : value, secrets: masker.secrets() };
      } catch (err) {
        reply = { type: 'lookup', id: r.id, error: { name: (err as Error).name, message: (err as Error).message }, secrets: masker.secrets() };
      }
      if (r.flag) {
        sync.port1.postMessage(reply);
        const flag = new Int32Array(r.flag);
        Atomics.store(flag, 0, 1);
        Atomics.notify(flag, 0);
      } else port1.postMessage(reply);
    });
    try {
      return await this.pool.run(
        { fileloc: opts.fileloc, fileVersion: opts.fileVersion, context: opts.context, inputs: opts.inputs, nextMethod: opts.nextMethod, failure: opts.failure, rendered: opts.rendered ?? null, port: port2, syncPort: sync.port2 },
        { signal: opts.signal, transferList: [port2, sync.port2] },
      );
    } finally {
      port1.close();
      sync.port1.close();
    }
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
