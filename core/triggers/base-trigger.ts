/**
 * BaseTrigger: an async generator that waits for something external and yields events.
 * Triggers are registered by a stable name (see registry.ts); a trigger row names its class
 * and carries kwargs validated by the class's zod schema on serialize and on deserialize.
 *
 * Lifecycle in the triggerer: `run()` is iterated until its first event; `cleanup()` runs on
 * every exit; `onKill()` runs only when a user kills the waiting task. Cancel external work
 * (a BigQuery job, say) in onKill, never in cleanup: a triggerer restart must not cancel it.
 */
import type { z } from 'zod';
import type { TriggerEvent } from './events.ts';
import type { Database } from '../db/client.ts';
import type { TaskLogger, VariableOptions } from '../authoring/context.ts';
import type { Connection } from '../connections/connection.ts';

/** What the triggerer gives a running trigger. */
export interface TriggerRuntime {
  /** Aborted when the trigger is cancelled or the triggerer stops; pass it to timers and I/O. */
  readonly signal: AbortSignal;
  /** The metadata database, for triggers that watch Updraft's own state. */
  readonly database: Database;
  /** Id of the trigger row. */
  readonly triggerId: number;
  /**
   * Lines written here go, masked, to the current try's log of every TI waiting on this
   * trigger, marked as the triggerer's: a retry, a poll error or a reconnect is visible there.
   */
  readonly log: TaskLogger;
  /** A connection by id (kwargs carry the id, never the credentials); cached briefly per triggerer. */
  connection(connId: string): Promise<Connection>;
  variable<T = string>(key: string, options?: VariableOptions<T>): Promise<T>;
}

export interface SerializedTrigger {
  name: string;
  kwargs: Record<string, unknown>;
}

export interface TriggerClass<K extends Record<string, unknown> = Record<string, unknown>> {
  new (kwargs: K): BaseTrigger<K>;
  readonly triggerName: string;
  readonly kwargsSchema: z.ZodType<K>;
}

export abstract class BaseTrigger<K extends Record<string, unknown> = Record<string, unknown>> {
  /** Set by the triggerer before `run()`; unset while the trigger is only being serialized. */
  runtime!: TriggerRuntime;

  constructor(readonly kwargs: K) {}

  abstract run(): AsyncGenerator<TriggerEvent, void, void>;

  cleanup(): void | Promise<void> {}

  onKill(): void | Promise<void> {}

  /** The stable name and the validated kwargs; this is what is stored. */
  serialize(): SerializedTrigger {
    const cls = this.constructor as TriggerClass<K>;
    return { name: cls.triggerName, kwargs: cls.kwargsSchema.parse(this.kwargs) as Record<string, unknown> };
  }

  get name(): string {
    return (this.constructor as TriggerClass<K>).triggerName;
  }
}
