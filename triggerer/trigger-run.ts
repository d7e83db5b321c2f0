/**
 * One trigger running in the triggerer: iterate its generator to the first event inside its
 * watchdog scope, turn what happens into an outcome (event, end-of-task, or failure), and
 * always run `cleanup()`. Cancelling aborts the trigger's signal at once; `onKill()` runs
 * only for a user kill, never for a triggerer shutdown or a reassignment.
 */
import { performance } from 'node:perf_hooks';
import type { BaseTrigger, Database, TriggerOutcome } from '../core/index.ts';
import { triggerScope, type TriggerScope, type Watchdog } from './watchdog.ts';

export interface WaitingTiInfo {
  id: number;
  label: string;
  timeout: Date | null;
}

export class TriggerRun implements TriggerScope {
  readonly controller = new AbortController();
  readonly tis = new Map<number, WaitingTiInfo>();
  private killed = false;
  done = false;

  constructor(
    readonly triggerId: number,
    readonly name: string,
    private readonly trigger: BaseTrigger,
    private readonly database: Database,
    private readonly watchdog: Watchdog,
    private readonly onOutcome: (o: TriggerOutcome) => void,
    private readonly log: (m: string) => void,
  ) {}

  describeTis(): string {
    const labels = [...this.tis.values()].map((t) => t.label);
    return labels.length > 3 ? `${labels.slice(0, 3).join(', ')} and ${labels.length - 3} more` : labels.join(', ') || '(no TI)';
  }

  start(): void {
    this.trigger.runtime = { signal: this.controller.signal, database: this.database, triggerId: this.triggerId };
    void triggerScope.run(this, () => this.iterate());
  }

  private async iterate(): Promise<void> {
    let gen: AsyncGenerator<unknown, void, void> | undefined;
    const aborted = new Promise<'aborted'>((resolve) => this.controller.signal.addEventListener('abort', () => resolve('aborted'), { once: true }));
    try {
      const t0 = performance.now();
      gen = this.trigger.run() as AsyncGenerator<unknown, void, void>;
      const next = gen.next();
      this.watchdog.check(this, performance.now() - t0);
      const step = await Promise.race([next, aborted]);
      if (step === 'aborted') return;
      if (step.done) {
        this.emit({ triggerId: this.triggerId, kind: 'failure', failure: { kind: 'error', message: `trigger ${this.name} ended without yielding an event`, retryable: true } });
        return;
      }
      this.emit(toOutcome(this.triggerId, step.value));
    } catch (err) {
      if (this.controller.signal.aborted) return;
      const e = err as Error;
      this.emit({ triggerId: this.triggerId, kind: 'failure', failure: { kind: 'error', message: `trigger ${this.name} raised ${e?.name ?? 'an error'}: ${e?.message ?? String(err)}`, retryable: true } });
    } finally {
      this.done = true;
      if (this.killed) await this.safely('onKill', () => this.trigger.onKill());
      // Ask the generator to finish its finally blocks, but never wait on one that ignores us.
      if (gen) void gen.return(undefined).catch(() => undefined);
      await this.safely('cleanup', () => this.trigger.cleanup());
    }
  }

  private emit(o: TriggerOutcome): void {
    if (!this.controller.signal.aborted) this.onOutcome(o);
  }

  /** Stop the trigger. `kill` means a user killed the waiting task: onKill runs too. */
  cancel(kill: boolean): void {
    if (this.done) {
      if (kill) void this.safely('onKill', () => this.trigger.onKill());
      return;
    }
    this.killed = kill;
    this.controller.abort(new Error(kill ? 'killed' : 'cancelled'));
  }

  private async safely(what: string, fn: () => unknown): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.log(`trigger ${this.name} #${this.triggerId} ${what}() raised: ${(err as Error).message}`);
    }
  }
}

function toOutcome(triggerId: number, event: unknown): TriggerOutcome {
  const e = event as { kind?: string; payload?: unknown; xcoms?: Record<string, unknown>; error?: string };
  if (e?.kind === 'success') return { triggerId, kind: 'success', xcoms: e.xcoms ?? {}, error: null };
  if (e?.kind === 'failed') return { triggerId, kind: 'failed', xcoms: e.xcoms ?? {}, error: `TaskFailedEvent: ${e.error ?? 'failed in the triggerer'}` };
  if (e?.kind === 'event') return { triggerId, kind: 'event', payload: e.payload ?? null };
  return { triggerId, kind: 'failure', failure: { kind: 'error', message: 'trigger yielded something that is not a TriggerEvent', retryable: false } };
}
