/**
 * `bigquery.BigQueryInsertJobTrigger`: waits for one job through the triggerer's coalesced
 * poller (see poller.ts), so 2,000 waiting jobs cost a `jobs.list` page or two per round, not
 * 2,000 `jobs.get`. The event is JSON: `{ status: 'success' | 'error', jobId, location,
 * message }`. `onKill` (a user marking the task failed or clearing it) cancels the job when
 * `cancelOnKill`; a triggerer restart or takeover only runs `cleanup`, which leaves it running.
 *
 * `bigquery.BigQueryTableExistenceTrigger` polls `tables.get` through the same shared client.
 */
import { z } from 'zod';
import { BaseTrigger, TriggerEvent, registerTrigger } from 'updraft';
import { BigQueryHook, describeError, summaryOf, type BigQueryJobSummary } from './hook.ts';
import { DEFAULT_POLL_CAP_MS, pollerFor } from './poller.ts';

const jobTriggerSchema = z.object({
  connId: z.string().min(1),
  jobId: z.string().min(1),
  location: z.string().min(1).optional(),
  /** Epoch ms the job was created (server time), which the poller lists from. */
  createdAt: z.number().int().nonnegative().optional(),
  pollCapMs: z.number().int().min(250).default(DEFAULT_POLL_CAP_MS),
  pollMode: z.enum(['coalesced', 'per_job']).default('coalesced'),
  cancelOnKill: z.boolean().default(true),
}).strict();

export type BigQueryJobTriggerKwargs = z.output<typeof jobTriggerSchema>;
export type BigQueryJobTriggerInput = z.input<typeof jobTriggerSchema>;

export interface BigQueryJobEvent {
  status: 'success' | 'error';
  jobId: string;
  location: string | null;
  message: string;
  /** The job's errors, verbatim, when it failed. */
  errors?: { reason?: string; location?: string; message?: string }[];
  /** What the job did, when it succeeded: the task returns it without another API call. */
  summary?: BigQueryJobSummary;
}

/** Kwargs are stored as JSON: leave out what was not given. */
const given = <T extends Record<string, unknown>>(k: T): T => Object.fromEntries(Object.entries(k).filter(([, v]) => v !== undefined)) as T;

export class BigQueryInsertJobTrigger extends BaseTrigger<BigQueryJobTriggerKwargs> {
  static readonly triggerName = 'bigquery.BigQueryInsertJobTrigger';
  static readonly kwargsSchema: z.ZodType<BigQueryJobTriggerKwargs> = jobTriggerSchema as z.ZodType<BigQueryJobTriggerKwargs>;

  constructor(kwargs: BigQueryJobTriggerInput) {
    super(given(jobTriggerSchema.parse(kwargs)));
  }

  private hook(): Promise<BigQueryHook> {
    return BigQueryHook.create({ connection: (id) => this.runtime.connection(id), log: this.runtime.log }, this.kwargs.connId);
  }

  async *run(): AsyncGenerator<TriggerEvent<BigQueryJobEvent>, void, void> {
    const k = this.kwargs;
    const hook = await this.hook();
    const location = k.location ?? hook.location;
    const poller = pollerFor(hook, location, { capMs: k.pollCapMs, mode: k.pollMode, log: this.runtime.log });
    const job = await poller.wait(k.jobId, k.createdAt ?? Date.now(), this.runtime.signal);
    const err = job.status.errorResult;
    yield new TriggerEvent<BigQueryJobEvent>(err
      ? { status: 'error', jobId: k.jobId, location: location ?? null, message: describeError(err), errors: job.status.errors ?? [err] }
      : { status: 'success', jobId: k.jobId, location: location ?? null, message: `job ${k.jobId} is done`, summary: summaryOf(job) });
  }

  override async onKill(): Promise<void> {
    if (!this.kwargs.cancelOnKill) return;
    const hook = await this.hook();
    await hook.cancelJob(this.kwargs.jobId, this.kwargs.location ?? hook.location);
    this.runtime.log.info('cancelled BigQuery job %s: its task was killed', this.kwargs.jobId);
  }
}

const tableTriggerSchema = z.object({
  connId: z.string().min(1),
  datasetId: z.string().min(1),
  tableId: z.string().min(1),
  pokeIntervalMs: z.number().int().min(100).default(60_000),
}).strict();

export type BigQueryTableTriggerKwargs = z.output<typeof tableTriggerSchema>;

export class BigQueryTableExistenceTrigger extends BaseTrigger<BigQueryTableTriggerKwargs> {
  static readonly triggerName = 'bigquery.BigQueryTableExistenceTrigger';
  static readonly kwargsSchema: z.ZodType<BigQueryTableTriggerKwargs> = tableTriggerSchema as z.ZodType<BigQueryTableTriggerKwargs>;

  constructor(kwargs: z.input<typeof tableTriggerSchema>) {
    super(given(tableTriggerSchema.parse(kwargs)));
  }

  async *run(): AsyncGenerator<TriggerEvent<{ datasetId: string; tableId: string; pokes: number }>, void, void> {
    const k = this.kwargs;
    const hook = await BigQueryHook.create({ connection: (id) => this.runtime.connection(id), log: this.runtime.log }, k.connId);
    for (let pokes = 1; ; pokes++) {
      if (await hook.tableExists(k.datasetId, k.tableId)) {
        yield new TriggerEvent({ datasetId: k.datasetId, tableId: k.tableId, pokes });
        return;
      }
      await new Promise<void>((resolve, reject) => {
        const signal = this.runtime.signal;
        const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, k.pokeIntervalMs);
        const onAbort = () => { clearTimeout(t); reject(signal.reason); };
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  }
}

registerTrigger(BigQueryInsertJobTrigger);
registerTrigger(BigQueryTableExistenceTrigger);
