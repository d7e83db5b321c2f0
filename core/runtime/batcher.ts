/**
 * Coalesces items produced on the event loop into batched writes: everything pushed before
 * the next turn of the loop goes into one call of `write` (one transaction), and items pushed
 * while a write is in flight form the next batch. Under load the owner may ask for a short
 * gathering time instead (`gatherMs`), as a database's group commit does: a few milliseconds
 * more per item, for fewer and larger transactions.
 *
 * A write that fails because the database is away, or lost a serialization or deadlock race,
 * is retried with the same items after a growing pause, so nothing is lost. A write that the
 * database refused for its data (any other SQLSTATE: a constraint, a value out of range) is
 * split in halves until the item(s) it refuses are found; each of those is handed to
 * `poisoned`, which turns it into what to write instead (a failure naming the database's
 * message), and everything else is written at once. One bad row never wedges the batch.
 */
import { isTransientDbError } from '../db/client.ts';

export interface BatcherHooks<T> {
  /** A retried write (the database is away, or a race lost): for the service's log. */
  onError(err: unknown, size: number): void;
  /**
   * The database refused this item's data alone: what to write instead (null: nothing), and
   * `dropped` is told if that write is refused too.
   */
  poisoned?(item: T, err: unknown): T | null;
  dropped?(item: T, err: unknown): void;
  /** How long to gather items before the next write, decided when its first item arrives (0: the next turn of the loop). */
  gatherMs?(): number;
}

export class Batcher<T> {
  private readonly queue: T[] = [];
  private inFlight: Promise<void> | null = null;
  private failures = 0;

  constructor(
    private readonly write: (batch: T[]) => Promise<void>,
    private readonly hooks: BatcherHooks<T>,
    private readonly retryDelayMs = 250,
    private readonly maxRetryDelayMs = 10_000,
  ) {}

  push(item: T): void {
    this.queue.push(item);
    this.schedule();
  }

  /** Items waiting for their write (not yet committed). */
  get pending(): readonly T[] {
    return this.queue;
  }

  /** Resolves once everything pushed so far is written. */
  async drain(): Promise<void> {
    while (this.inFlight || this.queue.length) {
      if (!this.inFlight) this.schedule();
      await this.inFlight;
    }
  }

  private schedule(): void {
    if (this.inFlight) return;
    const gather = this.hooks.gatherMs?.() ?? 0;
    this.inFlight = new Promise<void>((resolve) => (gather > 0 ? setTimeout(resolve, gather) : setImmediate(resolve)))
      .then(() => this.flush())
      .finally(() => {
        this.inFlight = null;
        if (this.queue.length) this.schedule();
      });
  }

  private async flush(): Promise<void> {
    const batch = this.queue.splice(0);
    if (!batch.length) return;
    const retry = await this.attempt(batch);
    if (!retry.length) {
      this.failures = 0;
      return;
    }
    this.queue.unshift(...retry);
    const delay = Math.min(this.maxRetryDelayMs, this.retryDelayMs * 2 ** Math.min(this.failures++, 16));
    await new Promise((r) => setTimeout(r, delay));
  }

  /** Write `batch`, splitting it around refused items; returns what must be retried later. */
  private async attempt(batch: T[]): Promise<T[]> {
    try {
      await this.write(batch);
      return [];
    } catch (err) {
      if (isTransientDbError(err) || !this.hooks.poisoned) {
        this.hooks.onError(err, batch.length);
        return batch;
      }
      if (batch.length > 1) {
        const mid = Math.ceil(batch.length / 2);
        return [...await this.attempt(batch.slice(0, mid)), ...await this.attempt(batch.slice(mid))];
      }
      return this.replace(batch[0], err);
    }
  }

  private async replace(item: T, err: unknown): Promise<T[]> {
    const instead = this.hooks.poisoned!(item, err);
    if (instead === null) return [];
    try {
      await this.write([instead]);
    } catch (again) {
      if (isTransientDbError(again)) {
        this.hooks.onError(again, 1);
        return [instead];
      }
      this.hooks.dropped?.(item, again);
    }
    return [];
  }
}
