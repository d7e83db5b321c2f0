/**
 * Scheduler metrics, served with `updraft scheduler --metrics-port P`: unfinished TIs by state
 * and pool slots (size, in use, open). Both are read from the database when scraped, at most
 * once every `minIntervalMs` (5 s) however often or by how many scrapers, with two cheap
 * queries: TIs are counted only in open states within running runs (an index walk that
 * follows the open work; finished TIs are never counted), and pools from the pools table with
 * the running (or deferred, where they count) TIs holding their slots. Run durations are
 * observed where runs close (process-wide, see core).
 */
import { Gauge } from 'prom-client';
import { queries, ServiceMetrics, type Database } from '../core/index.ts';

export class SchedulerMetrics extends ServiceMetrics {
  private readonly tis = this.gauge('updraft_task_instances', 'Unfinished TIs of running runs, by state (finished states are not counted)', 'state');
  private readonly poolSlots = this.gauge('updraft_pool_slots', 'Slots of each pool (-1: unlimited)', 'pool');
  private readonly poolUsed = this.gauge('updraft_pool_slots_used', 'Pool slots held by running TIs (and deferred ones where the pool counts them)', 'pool');
  private readonly poolOpen = this.gauge('updraft_pool_slots_open', 'Pool slots free for more TIs', 'pool');
  private refreshing: Promise<void> | null = null;
  private refreshedAt = -Infinity;

  constructor(private readonly database: Database, private readonly minIntervalMs = 5000, private readonly log: (message: string) => void = () => {}) {
    super('updraft_scheduler_');
  }

  private gauge(name: string, help: string, label: string): Gauge<string> {
    return new Gauge({ name, help, labelNames: [label], registers: [this.registry], collect: () => this.refresh() });
  }

  /** Re-read the counts unless they are fresher than minIntervalMs; concurrent callers share one read. */
  refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    if (performance.now() - this.refreshedAt < this.minIntervalMs) return Promise.resolve();
    this.refreshing = this.read()
      .catch((err: Error) => this.log(`metrics: could not read TI and pool counts, serving the last ones: ${err.message}`))
      .finally(() => {
        this.refreshedAt = performance.now();
        this.refreshing = null;
      });
    return this.refreshing;
  }

  private async read(): Promise<void> {
    const { db } = this.database;
    const [states, pools] = [await queries.taskInstances.countOpenTisByState(db), await queries.pools.listPools(db)];
    for (const [state, n] of Object.entries(states)) this.tis.set({ state }, n);
    // A deleted pool's series go away.
    for (const g of [this.poolSlots, this.poolUsed, this.poolOpen]) g.reset();
    for (const p of pools) {
      this.poolSlots.set({ pool: p.name }, p.slots);
      this.poolUsed.set({ pool: p.name }, p.used);
      this.poolOpen.set({ pool: p.name }, p.slots < 0 ? Infinity : Math.max(0, p.slots - p.used));
    }
  }
}
