/**
 * The stall watchdog. It measures event-loop lag continuously and, unlike a plain lag timer,
 * names the culprit: every trigger runs inside an AsyncLocalStorage scope, and async_hooks
 * time each callback that runs in such a scope (timer, I/O or promise continuation). A
 * callback that holds the loop past the threshold is reported with its trigger and TIs.
 * Synchronous work done inside `gen.next()` itself is timed by the runner and reported here.
 */
import { AsyncLocalStorage, createHook, type AsyncHook } from 'node:async_hooks';
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';

export interface TriggerScope {
  triggerId: number;
  name: string;
}

export interface BlockReport {
  triggerId: number;
  name: string;
  ms: number;
}

export const triggerScope = new AsyncLocalStorage<TriggerScope>();

export class Watchdog {
  private readonly hook: AsyncHook;
  private readonly stack: { scope: TriggerScope | undefined; start: number }[] = [];
  private readonly lag: IntervalHistogram;
  private sampler?: NodeJS.Timeout;
  private lastSample = performance.now();
  /** Recent lag samples (ms), for percentiles in benchmarks and logs. */
  readonly lagSamples: number[] = [];

  constructor(private readonly thresholdMs: number, private readonly onBlock: (r: BlockReport) => void, private readonly onLag: (ms: number) => void) {
    this.hook = createHook({
      before: () => {
        this.stack.push({ scope: triggerScope.getStore(), start: performance.now() });
      },
      after: () => {
        const top = this.stack.pop();
        if (top?.scope) this.check(top.scope, performance.now() - top.start);
      },
    });
    this.lag = monitorEventLoopDelay({ resolution: 10 });
  }

  start(): void {
    this.hook.enable();
    this.lag.enable();
    const every = 100;
    this.lastSample = performance.now();
    this.sampler = setInterval(() => {
      const now = performance.now();
      const lagMs = Math.max(0, now - this.lastSample - every);
      this.lastSample = now;
      this.lagSamples.push(lagMs);
      if (this.lagSamples.length > 100_000) this.lagSamples.splice(0, 50_000);
      this.onLag(lagMs);
    }, every);
    this.sampler.unref();
  }

  /** Report a synchronous stretch the runner timed itself. */
  check(scope: TriggerScope, ms: number): void {
    if (ms > this.thresholdMs) this.onBlock({ triggerId: scope.triggerId, name: scope.name, ms: Math.round(ms) });
  }

  lagPercentileMs(p: number): number {
    return this.lag.percentile(p) / 1e6;
  }

  stop(): void {
    clearInterval(this.sampler);
    this.hook.disable();
    this.lag.disable();
  }
}
