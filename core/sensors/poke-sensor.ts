/**
 * PokeSensorOperator: a sensor that calls `poke(context)` until it reports done, Airflow's
 * classic BaseSensorOperator. Two modes, as in Airflow:
 *
 * - `poke` (default) holds its worker slot and sleeps `pokeInterval` between pokes;
 * - `reschedule` pokes once per visit: when not done it raises `TaskRescheduled`, the TI waits
 *   as `up_for_reschedule` holding no slot, and the scheduler hands it back after the interval.
 *
 * `timeout` counts from the first poke of the try, across reschedules (the first poke's time
 * travels in the rescheduled TI's kwargs). `exponentialBackoff` grows the interval as
 * Airflow's `_get_next_poke_interval` does, with the same deterministic jitter, capped by
 * `maxWait`. A poke may return `true`/`false` or `{ done, value }` (Airflow's PokeReturnValue):
 * `value` becomes the task's return value.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { BaseSensorOperator, SensorTimeout, type SensorOptions } from './base-sensor.ts';
import { durationSchema, type Duration } from '../authoring/duration.ts';
import { formatZodIssues } from '../authoring/operator.ts';
import type { Context } from '../authoring/context.ts';
import { TaskRescheduled } from '../authoring/reschedule.ts';
import { sleep } from '../triggers/builtin/date-time.ts';

export const SensorMode = { POKE: 'poke', RESCHEDULE: 'reschedule' } as const;
export type SensorMode = (typeof SensorMode)[keyof typeof SensorMode];

/** What a poke returns: done or not, or done with a value (Airflow's PokeReturnValue). */
export type PokeResult<T = unknown> = boolean | { done: boolean; value?: T };

export interface PokeSensorOptions extends Omit<SensorOptions, 'mode'> {
  /** 'poke' holds the slot between pokes; 'reschedule' frees it and comes back. Default 'poke'. */
  mode?: SensorMode;
  /** Grow the wait between pokes exponentially (with jitter), as Airflow's exponential_backoff. */
  exponentialBackoff?: boolean;
  /** Cap on the wait between pokes when backing off. */
  maxWait?: Duration | null;
}

const POKE_KEYS = ['mode', 'exponentialBackoff', 'maxWait'] as const;

const pokeOptionsSchema = z.object({
  mode: z.enum([SensorMode.POKE, SensorMode.RESCHEDULE]).default(SensorMode.POKE),
  exponentialBackoff: z.boolean().default(false),
  maxWait: durationSchema.nullable().default(null),
}).strict();

/** What a rescheduled poke carries to the next one (read back from the database: checked). */
const carriedSchema = z.object({ firstPokeAt: z.number(), pokes: z.number().int().nonnegative() });

export abstract class PokeSensorOperator extends BaseSensorOperator {
  readonly sensorMode: SensorMode;
  readonly exponentialBackoff: boolean;
  /** Milliseconds, or null for no cap. */
  readonly maxWait: number | null;

  constructor(options: PokeSensorOptions) {
    const rest: Record<string, unknown> = { ...options };
    for (const k of POKE_KEYS) delete rest[k];
    super(rest as unknown as SensorOptions);
    const parsed = pokeOptionsSchema.safeParse({ mode: options.mode, exponentialBackoff: options.exponentialBackoff, maxWait: options.maxWait });
    if (!parsed.success) throw this.invalid(formatZodIssues(parsed.error));
    this.sensorMode = parsed.data.mode;
    this.exponentialBackoff = parsed.data.exponentialBackoff;
    this.maxWait = parsed.data.maxWait;
  }

  /** Is the condition met? Called once per poke. */
  abstract poke(context: Context): PokeResult | Promise<PokeResult>;

  async execute(context: Context): Promise<unknown> {
    const carried = carriedSchema.safeParse(context.resumeKwargs);
    const firstPokeAt = carried.success ? carried.data.firstPokeAt : Date.now();
    let pokes = carried.success ? carried.data.pokes : 0;
    for (;;) {
      pokes++;
      const result = await this.poke(context);
      const done = typeof result === 'boolean' ? result : result?.done === true;
      if (done) return typeof result === 'object' ? result.value : undefined;
      const elapsed = Date.now() - firstPokeAt;
      if (elapsed >= this.timeout) {
        const why = `its condition was not met after ${pokes} poke(s) in ${Math.round(elapsed / 100) / 10}s (timeout ${this.timeout / 1000}s)`;
        if (this.softFail) throw this.skipped(why);
        throw new SensorTimeout(`sensor "${this.taskId}" of DAG "${this.dagId}" timed out: ${why}`);
      }
      // The last wait ends at the timeout, so the final poke happens right on it.
      const wait = Math.max(0, Math.min(this.nextPokeInterval(context, pokes, firstPokeAt), this.timeout - elapsed));
      context.log.info('poke %d: not done yet; next poke in %d ms', pokes, wait);
      if (this.sensorMode === SensorMode.RESCHEDULE) throw new TaskRescheduled(new Date(Date.now() + wait), { firstPokeAt, pokes });
      if (!(await sleep(wait, context.signal))) throw context.signal.reason ?? new Error('the sensor was stopped');
    }
  }

  /** Nothing to resume into: a poking sensor never defers. */
  executeComplete(_context: Context, event?: unknown): unknown {
    return event;
  }

  /**
   * The wait after poke number `pokes` (1-based). With backoff, Airflow's formula in
   * milliseconds: at least pokeInterval × 2^(pokes − 2), plus a jitter below that, from a SHA-1
   * of dag#task#first poke#pokes, so a retried computation gives the same instant.
   */
  nextPokeInterval(context: Pick<Context, 'dagId' | 'taskId'>, pokes: number, firstPokeAt: number): number {
    if (!this.exponentialBackoff) return this.pokeInterval;
    const minBackoff = Math.max(Math.floor(this.pokeInterval * 2 ** Math.min(pokes - 2, 40)), 1);
    const digest = createHash('sha1').update(`${context.dagId}#${context.taskId}#${new Date(firstPokeAt).toISOString()}#${pokes}`).digest();
    const jitter = digest.readUIntBE(0, 6) % minBackoff;
    const wait = minBackoff + jitter;
    return this.maxWait === null ? wait : Math.min(wait, this.maxWait);
  }
}
