/**
 * Time triggers: `DateTimeTrigger` fires at an absolute moment and `TimeDeltaTrigger` fires a
 * delay after it was created. Both store only the absolute moment, so a triggerer restart
 * does not restart the wait and identical deferrals serialize identically (they dedup). This
 * module also owns the abortable timer helpers every built-in waits with: one timer per
 * waiting trigger, cleared the moment the triggerer aborts it.
 */
import { z } from 'zod';
import { BaseTrigger } from '../base-trigger.ts';
import { TriggerEvent } from '../events.ts';
import { registerTrigger } from '../registry.ts';
import { durationSchema, type Duration } from '../../authoring/duration.ts';
import { InvalidTriggerKwargsError } from '../../errors.ts';

/** setTimeout's ceiling; longer waits are chained in chunks this size. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Polling triggers refuse shorter intervals: below this, polling is close to a busy loop. */
export const MIN_POKE_INTERVAL_MS = 100;

/** An instant with an explicit zone ("Z" or "+02:00"), so it means the same on every host. */
export const isoInstantSchema = z.iso.datetime({
  offset: true,
  message: 'expected an ISO 8601 instant with a zone, e.g. "2024-01-01T00:00:00Z"',
});

/** Canonical form (UTC, milliseconds) so equal instants serialize equally; bad input is kept for zod to name. */
export function toIsoInstant(value: string | Date): string {
  const d = typeof value === 'string' ? new Date(value) : value;
  if (Number.isNaN(d.getTime())) return String(value);
  if (typeof value === 'string' && !isoInstantSchema.safeParse(value).success) return value;
  return d.toISOString();
}

/** Resolve true once `epochMs` is reached, false as soon as `signal` aborts. */
export async function sleepUntil(epochMs: number, signal: AbortSignal): Promise<boolean> {
  for (;;) {
    if (signal.aborted) return false;
    const remaining = epochMs - Date.now();
    if (remaining <= 0) return true;
    // Timers may wake a millisecond early against the wall clock; the loop re-arms for the rest.
    if (!(await sleep(Math.min(remaining, MAX_TIMER_MS), signal))) return false;
  }
}

/** One timer, cleared on abort; resolves false if aborted. */
export function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** A type alias, not an interface: aliases satisfy BaseTrigger's Record<string, unknown> bound. */
export type DateTimeTriggerKwargs = {
  /** ISO 8601 instant with a zone. */
  moment: string;
};

const dateTimeKwargsSchema = z.object({ moment: isoInstantSchema }).strict();

/** Fires once the wall clock reaches `moment`; at once if it already passed. Payload `{ moment }`. */
export class DateTimeTrigger extends BaseTrigger<DateTimeTriggerKwargs> {
  static readonly triggerName: string = 'updraft.DateTimeTrigger';
  static readonly kwargsSchema: z.ZodType<DateTimeTriggerKwargs> = dateTimeKwargsSchema;

  constructor(kwargs: { moment: string | Date }) {
    super({ moment: toIsoInstant(kwargs.moment) });
  }

  get moment(): Date {
    return new Date(this.kwargs.moment);
  }

  async *run(): AsyncGenerator<TriggerEvent, void, void> {
    const target = Date.parse(this.kwargs.moment);
    // Unvalidated kwargs (a trigger run without deserializing) must not become a 1 ms loop.
    if (Number.isNaN(target)) throw new InvalidTriggerKwargsError(this.name, `moment: "${this.kwargs.moment}" is not a date`);
    if (!(await sleepUntil(target, this.runtime.signal))) return;
    yield new TriggerEvent({ moment: this.kwargs.moment });
  }
}

/**
 * Fires `delta` after construction. Like Airflow's, it is a DateTimeTrigger whose moment is
 * fixed when the task defers; only the moment is stored, never the delta.
 */
export class TimeDeltaTrigger extends DateTimeTrigger {
  static override readonly triggerName: string = 'updraft.TimeDeltaTrigger';

  /** `TimeDeltaTrigger.after('5m')` or `.after(300_000)`: fire that long from now. */
  static after(delta: Duration): TimeDeltaTrigger {
    const parsed = durationSchema.safeParse(delta);
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => i.message).join('; ');
      throw new InvalidTriggerKwargsError(TimeDeltaTrigger.triggerName, `delta ${JSON.stringify(delta)}: ${why}`);
    }
    return new TimeDeltaTrigger({ moment: new Date(Date.now() + parsed.data) });
  }
}

registerTrigger(DateTimeTrigger);
registerTrigger(TimeDeltaTrigger);
