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

export interface SyncRunOptions {
  fileloc: string;
  fileVersion: string;
  context: ContextData;
  inputs: unknown;
  nextMethod: string | null;
  failure: DeferralFailure | null;
  signal: AbortSignal;
  xcomPull(taskId: string, key: string, mapIndex: number): Promise<unknown>;
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
    port1.on('message', async (m: { type: string; id: number; taskId: string; key: string; mapIndex: number }) => {
      if (m.type === 'xcomPull') {
        const value = await opts.xcomPull(m.taskId, m.key, m.mapIndex).catch(() => undefined);
        port1.postMessage({ type: 'xcom', id: m.id, value });
      }
    });
    try {
      return await this.pool.run(
        { fileloc: opts.fileloc, fileVersion: opts.fileVersion, context: opts.context, inputs: opts.inputs, nextMethod: opts.nextMethod, failure: opts.failure, port: port2 },
        { signal: opts.signal, transferList: [port2] },
      );
    } finally {
      port1.close();
    }
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
