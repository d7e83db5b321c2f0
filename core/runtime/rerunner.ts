/**
 * Runs an async job now, or, if it is already running, once more right after: wake-ups that
 * arrive during a run coalesce into a single follow-up run, and two runs never overlap. The
 * worker's and triggerer's claim loops and the scheduler's pass all wake this way.
 */
export class Rerunner {
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(private readonly job: () => Promise<void>, private readonly onError: (err: unknown) => void) {}

  /** Ask for a run; resolves once the run it started or joined (and any follow-up) is done. */
  request(): Promise<void> {
    if (this.stopped) return this.idle;
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.job();
        } catch (err) {
          this.onError(err);
        }
      } while (this.again && !this.stopped);
      this.running = null;
    })();
    return this.running;
  }

  /** From inside the job: run once more when this run ends (there is more to do). */
  requestAgain(): void {
    this.again = true;
  }

  /** Whether a run is in flight now. */
  get busy(): boolean {
    return this.running !== null;
  }

  /** Resolves when no run is in flight. */
  get idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  /** No new runs; the one in flight finishes (await `idle`). */
  stop(): void {
    this.stopped = true;
  }
}
