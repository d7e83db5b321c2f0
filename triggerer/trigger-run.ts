/**
 * One trigger running in the triggerer: iterate its generator to the first event inside its
 * watchdog scope, turn what happens into an outcome (event, end-of-task, or failure), and
 * always run `cleanup()`. Cancelling aborts the trigger's signal at once; `onKill()` runs
 * only for a user kill, never for a triggerer shutdown or a reassignment.
 */
import { performance } from 'node:perf_hooks';
import { findJsonProblem, variableValue, type BaseTrigger, type Connection, type Database, type TaskLogger, type TriggerOutcome, type TriggerRuntime, type VariableOptions } from '../core/index.ts';
import { triggerScope, type TriggerScope, type Watchdog } from './watchdog.ts';

/** What a run needs from the triggerer that owns it (one object, not a closure per run). */
export interface TriggerRunOwner {
  readonly database: Database;
  readonly watchdog: Watchdog;
  accept(outcome: TriggerOutcome): void;
  report(message: string): void;
  connection(connId: string): Promise<Connection>;
  variable(key: string): Promise<string | undefined>;
  triggerLog(run: TriggerRun, level: 'info' | 'warn' | 'error' | 'debug', message: string, args: unknown[]): void;
}

/**
 * Kept small on purpose: a triggerer holds 100,000 of these. It is also the trigger's
 * runtime (prototype methods and getters, so no closures per trigger).
 */
export class TriggerRun implements TriggerScope, TriggerRuntime {
  readonly controller = new AbortController();
  /** Ids of the TIs waiting on this trigger (usually one; many when deduplicated). */
  readonly tiIds: number[] = [];
  private gen: AsyncGenerator<unknown, void, void> | null = null;
  private killed = false;
  done = false;

  constructor(readonly triggerId: number, readonly name: string, private readonly trigger: BaseTrigger, private readonly owner: TriggerRunOwner) {}

  start(): void {
    this.trigger.runtime = this;
    // Callbacks rather than an async wrapper: each awaiting layer would keep promises alive
    // per trigger, and a triggerer holds 100,000 of them.
    triggerScope.run(this, () => {
      const t0 = performance.now();
      let next: Promise<IteratorResult<unknown, void>>;
      try {
        this.gen = this.trigger.run() as AsyncGenerator<unknown, void, void>;
        next = this.gen.next();
      } catch (err) {
        this.onError(err);
        return;
      } finally {
        this.owner.watchdog.check(this, performance.now() - t0);
      }
      next.then((step) => this.onStep(step), (err) => this.onError(err));
    });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get database(): Database {
    return this.owner.database;
  }

  get log(): TaskLogger {
    return {
      info: (m, ...a) => this.owner.triggerLog(this, 'info', m, a),
      warn: (m, ...a) => this.owner.triggerLog(this, 'warn', m, a),
      error: (m, ...a) => this.owner.triggerLog(this, 'error', m, a),
      debug: (m, ...a) => this.owner.triggerLog(this, 'debug', m, a),
    };
  }

  connection(connId: string): Promise<Connection> {
    return this.owner.connection(connId);
  }

  async variable<T = string>(key: string, options?: VariableOptions<T>): Promise<T> {
    return variableValue(key, await this.owner.variable(key), options);
  }

  private onStep(step: IteratorResult<unknown, void>): void {
    if (this.done) return;
    if (step.done) {
      this.emit({ triggerId: this.triggerId, kind: 'failure', failure: { kind: 'error', message: `trigger ${this.name} ended without yielding an event`, retryable: true } });
    } else {
      this.emit(toOutcome(this.triggerId, step.value));
    }
    this.finish();
  }

  private onError(err: unknown): void {
    if (this.done) return;
    const e = err as Error;
    this.emit({ triggerId: this.triggerId, kind: 'failure', failure: { kind: 'error', message: `trigger ${this.name} raised ${e?.name ?? 'an error'}: ${e?.message ?? String(err)}`, retryable: true } });
    this.finish();
  }

  /** Runs once, on every exit: onKill for a user kill, then the generator's finally blocks and cleanup. */
  private finish(): void {
    if (this.done) return;
    this.done = true;
    const gen = this.gen;
    this.gen = null;
    void (async () => {
      if (this.killed) await this.safely('onKill', () => this.trigger.onKill());
      // Ask the generator to finish, but never wait on one that ignores us.
      if (gen) void gen.return(undefined).catch(() => undefined);
      await this.safely('cleanup', () => this.trigger.cleanup());
    })();
  }

  private emit(o: TriggerOutcome): void {
    if (!this.controller.signal.aborted) this.owner.accept(o);
  }

  /** Stop the trigger. `kill` means a user killed the waiting task: onKill runs too. */
  cancel(kill: boolean): void {
    if (this.done) {
      if (kill) void this.safely('onKill', () => this.trigger.onKill());
      return;
    }
    this.killed = kill;
    this.controller.abort(new Error(kill ? 'killed' : 'cancelled'));
    this.finish();
  }

  private async safely(what: string, fn: () => unknown): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.owner.report(`trigger ${this.name} #${this.triggerId} ${what}() raised: ${(err as Error).message}`);
    }
  }
}

function toOutcome(triggerId: number, event: unknown): TriggerOutcome {
  const e = event as { kind?: string; payload?: unknown; xcoms?: Record<string, unknown>; error?: string };
  const failure = (message: string): TriggerOutcome => ({ triggerId, kind: 'failure', failure: { kind: 'error', message, retryable: false } });
  // What the database cannot store fails this wait alone, not the batch that applies events.
  const problem = e?.kind === 'event' ? findJsonProblem(e.payload ?? null, 'payload')
    : e?.kind === 'success' || e?.kind === 'failed' ? findJsonProblem(e.xcoms ?? {}, 'xcoms') : null;
  if (problem) return failure(`trigger event cannot be stored as JSON: ${problem.what} at ${problem.at}`);
  if (e?.kind === 'success') return { triggerId, kind: 'success', xcoms: e.xcoms ?? {}, error: null };
  if (e?.kind === 'failed') return { triggerId, kind: 'failed', xcoms: e.xcoms ?? {}, error: `TaskFailedEvent: ${e.error ?? 'failed in the triggerer'}` };
  if (e?.kind === 'event') return { triggerId, kind: 'event', payload: e.payload ?? null };
  return failure('trigger yielded something that is not a TriggerEvent');
}
