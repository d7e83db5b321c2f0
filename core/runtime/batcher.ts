/**
 * Coalesces items produced on the event loop into batched writes: everything pushed before
 * the next turn of the loop goes into one call of `write` (one transaction), and items pushed
 * while a write is in flight form the next batch. A failed write is retried with the same
 * items after a pause, so nothing is lost while the database is briefly away.
 */
export class Batcher<T> {
  private readonly queue: T[] = [];
  private inFlight: Promise<void> | null = null;

  constructor(
    private readonly write: (batch: T[]) => Promise<void>,
    private readonly onError: (err: unknown, size: number) => void,
    private readonly retryDelayMs = 500,
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
    this.inFlight = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.flush())
      .finally(() => {
        this.inFlight = null;
        if (this.queue.length) this.schedule();
      });
  }

  private async flush(): Promise<void> {
    const batch = this.queue.splice(0);
    if (!batch.length) return;
    try {
      await this.write(batch);
    } catch (err) {
      this.onError(err, batch.length);
      await new Promise((r) => setTimeout(r, this.retryDelayMs));
      this.queue.unshift(...batch);
    }
  }
}
