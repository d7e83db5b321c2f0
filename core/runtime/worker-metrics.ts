/**
 * A worker's metrics: claims (statement time, TIs per claim), result batches (write time, TIs
 * per batch), the scheduling delay of each TI it starts, and its slots. Everything is observed
 * from what the worker already has in hand, once per claim or batch and once per TI started:
 * no query of its own. Served with `updraft worker --metrics-port P`.
 */
import { Gauge, Histogram } from 'prom-client';
import { ServiceMetrics } from '../metrics/service-metrics.ts';

const FAST = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const SIZES = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

export interface WorkerLoad {
  slots: number;
  executing: number;
  prefetched: number;
}

export class WorkerMetrics extends ServiceMetrics {
  readonly claimSeconds = new Histogram({
    name: 'updraft_worker_claim_seconds', help: 'One claim transaction (lock pools, claim, commit) outside a result batch', buckets: FAST, registers: [this.registry],
  });
  readonly claimSize = new Histogram({
    name: 'updraft_worker_claim_batch_size', help: 'TIs per claim; via: claim (a claim of its own) or batch (in a result batch\'s transaction)',
    labelNames: ['via'] as const, buckets: SIZES, registers: [this.registry],
  });
  readonly batchSeconds = new Histogram({
    name: 'updraft_worker_finish_batch_seconds',
    help: 'One result batch transaction: finishes, XComs, logs, downstream scheduling, run closing and the claim that rides along',
    buckets: FAST, registers: [this.registry],
  });
  readonly batchSize = new Histogram({ name: 'updraft_worker_finish_batch_size', help: 'TI results per batch transaction', buckets: SIZES.slice(1), registers: [this.registry] });
  readonly schedulingDelay = new Histogram({
    name: 'updraft_ti_scheduling_delay_seconds',
    help: 'A TI became scheduled (its upstreams done, a retry released, a trigger fired) → a worker claimed it and it started (database clock)',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900], registers: [this.registry],
  });

  constructor(load: () => WorkerLoad) {
    super('updraft_worker_');
    const gauge = (name: string, help: string, read: (l: WorkerLoad) => number) => new Gauge({
      name, help, registers: [this.registry],
      collect() {
        this.set(read(load()));
      },
    });
    gauge('updraft_worker_slots', 'Task slots of this worker', (l) => l.slots);
    gauge('updraft_worker_slots_busy', 'Slots executing a TI now', (l) => l.executing);
    gauge('updraft_worker_prefetched', 'TIs claimed ahead, waiting for a slot', (l) => l.prefetched);
  }
}
