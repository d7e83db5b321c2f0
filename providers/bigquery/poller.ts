/**
 * Coalesced job polling: ONE poller per client, project and location in a process (the
 * triggerer, or a worker awaiting jobs). Every job waiting there subscribes to it; each round
 * lists the project's finished jobs (`jobs.list`, state filter `done`, since the oldest waiting
 * job was created, minimal projection, paged) and reads `jobs.get` only for the waiting jobs
 * the list reports done. 2,000 jobs waiting cost a page or two of `jobs.list` per round and one
 * `jobs.get` per finished job, where polling each job would cost 2,000 `jobs.get` per round.
 *
 * The interval adapts: an eighth of the youngest waiting job's age, up to the cap (default 5 s),
 * so short jobs are seen soon and long ones are not polled hard. The floor is 100 ms while at
 * most 100 jobs wait and 250 ms above that: a round's `jobs.list` returns every job finished
 * since the oldest waiting one began, so its cost grows with the crowd. Where
 * `jobs.list` is not permitted (403), the poller falls back to `jobs.get` per job, and says so
 * once.
 */
import type { TaskLogger } from 'updraft';
import type { BigQueryHook, BigQueryJob } from './hook.ts';

export const MIN_POLL_MS = 100;
/** The floor once more than FEW_JOBS wait. */
export const CROWDED_MIN_POLL_MS = 250;
const FEW_JOBS = 100;
export const DEFAULT_POLL_CAP_MS = 5_000;
/** Jobs are listed from this long before the oldest waiting job's creation (clock skew). */
const LIST_SLACK_MS = 60_000;
/** jobs.get reads in flight at once per poller. */
const GETS_IN_FLIGHT = 50;

interface Waiter {
  jobId: string;
  /** Epoch ms of the job's creation (server time), or of the subscription. */
  since: number;
  resolve(job: BigQueryJob): void;
  reject(err: unknown): void;
}

export type PollMode = 'coalesced' | 'per_job';

export class JobPoller {
  private readonly waiting = new Map<string, Set<Waiter>>();
  private running = false;
  private wake: (() => void) | null = null;
  private listForbidden = false;
  /** Requests sent, by method, for the bench and for metrics. */
  readonly requests = { list: 0, get: 0 };

  constructor(
    private readonly hook: BigQueryHook,
    readonly location: string | undefined,
    private readonly opts: { capMs: number; mode: PollMode; log?: TaskLogger },
  ) {}

  /** Resolves with the job once it is DONE (with or without an error); rejects when `signal` aborts. */
  wait(jobId: string, since: number, signal?: AbortSignal): Promise<BigQueryJob> {
    return new Promise<BigQueryJob>((resolve, reject) => {
      const waiter: Waiter = { jobId, since, resolve, reject };
      const set = this.waiting.get(jobId) ?? new Set<Waiter>();
      set.add(waiter);
      this.waiting.set(jobId, set);
      const onAbort = () => {
        this.drop(waiter);
        reject(signal!.reason);
      };
      if (signal) {
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
        const settle = (fn: (v: never) => void) => (v: never) => { signal.removeEventListener('abort', onAbort); fn(v); };
        waiter.resolve = settle(resolve as (v: never) => void);
        waiter.reject = settle(reject as (v: never) => void);
      }
      this.start();
    });
  }

  get size(): number {
    return this.waiting.size;
  }

  private drop(waiter: Waiter): void {
    const set = this.waiting.get(waiter.jobId);
    set?.delete(waiter);
    if (set && !set.size) this.waiting.delete(waiter.jobId);
  }

  private start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop().finally(() => { this.running = false; if (this.waiting.size) this.start(); });
  }

  private interval(): number {
    let youngest = Infinity;
    let count = 0;
    const now = Date.now();
    for (const set of this.waiting.values()) for (const w of set) { youngest = Math.min(youngest, now - w.since); count++; }
    const floor = count > FEW_JOBS ? CROWDED_MIN_POLL_MS : MIN_POLL_MS;
    return Math.min(this.opts.capMs, Math.max(floor, Number.isFinite(youngest) ? youngest / 8 : floor));
  }

  private async loop(): Promise<void> {
    while (this.waiting.size) {
      await new Promise<void>((r) => {
        const t = setTimeout(r, this.interval());
        t.unref?.();
        this.wake = () => { clearTimeout(t); r(); };
      });
      this.wake = null;
      if (!this.waiting.size) return;
      try {
        const done = this.opts.mode === 'per_job' || this.listForbidden ? [...this.waiting.keys()] : await this.listDone();
        await this.readAll(done);
      } catch (err) {
        this.opts.log?.warn('BigQuery job poll failed, trying again next round: %s', (err as Error).message);
      }
    }
  }

  /** Waiting job ids that jobs.list reports done. */
  private async listDone(): Promise<string[]> {
    let oldest = Infinity;
    for (const set of this.waiting.values()) for (const w of set) oldest = Math.min(oldest, w.since);
    const found = new Set<string>();
    let pageToken: string | undefined;
    try {
      do {
        this.requests.list++;
        const page = await this.hook.listJobs({ stateFilter: ['done'], minCreationTime: Math.max(0, oldest - LIST_SLACK_MS), projection: 'minimal', pageToken, maxResults: 1000 });
        for (const j of page.jobs) if (this.waiting.has(j.jobReference.jobId)) found.add(j.jobReference.jobId);
        pageToken = page.pageToken;
      } while (pageToken && found.size < this.waiting.size);
    } catch (err) {
      if ((err as { code?: number }).code !== 403) throw err;
      this.listForbidden = true;
      this.opts.log?.warn('BigQuery jobs.list is not permitted for this connection (%s); polling each job with jobs.get instead', (err as Error).message);
      return [...this.waiting.keys()];
    }
    return [...found];
  }

  /** jobs.get for each id, a few at a time; DONE jobs settle their waiters. */
  private async readAll(ids: string[]): Promise<void> {
    let next = 0;
    const lane = async () => {
      while (next < ids.length) {
        const jobId = ids[next++];
        if (!this.waiting.has(jobId)) continue;
        this.requests.get++;
        let job: BigQueryJob;
        try {
          job = await this.hook.getJob(jobId, this.location);
        } catch (err) {
          if ((err as { code?: number }).code === 404) {
            for (const w of this.waiting.get(jobId) ?? []) w.reject(new Error(`BigQuery job ${jobId} no longer exists (location ${this.location ?? 'default'})`));
            this.waiting.delete(jobId);
            continue;
          }
          throw err;
        }
        if (job.status?.state !== 'DONE') continue;
        const set = this.waiting.get(jobId);
        this.waiting.delete(jobId);
        for (const w of set ?? []) w.resolve(job);
      }
    };
    await Promise.all(Array.from({ length: Math.min(GETS_IN_FLIGHT, ids.length) }, lane));
  }
}

const pollers = new Map<string, JobPoller>();

/** The process's poller for a hook's client, project and location. */
export function pollerFor(hook: BigQueryHook, location: string | undefined, opts: { capMs?: number; mode?: PollMode; log?: TaskLogger } = {}): JobPoller {
  const mode = opts.mode ?? 'coalesced';
  const key = JSON.stringify([hook.target, location ?? null, mode, opts.capMs ?? DEFAULT_POLL_CAP_MS]);
  let poller = pollers.get(key);
  if (!poller) pollers.set(key, poller = new JobPoller(hook, location, { capMs: opts.capMs ?? DEFAULT_POLL_CAP_MS, mode, log: opts.log }));
  return poller;
}

/** Every poller of this process (bench and metrics). */
export function allPollers(): JobPoller[] {
  return [...pollers.values()];
}
