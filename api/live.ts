/**
 * Live updates for open pages, over Server-Sent Events. The hub LISTENs on the channels the
 * services already NOTIFY on (scheduler, worker, triggerer); a notification makes it read the
 * state of what pages watch, once for all of them: the grid window of each watched DAG, and
 * the latest runs of every DAG for the DAG list. Only what changed goes out. Reads coalesce: a
 * burst of notifications during a read causes one more read, not one per notification.
 * A worker's claim (scheduled → running) sends no NOTIFY, so while any page watches, the hub
 * also reads every few seconds, one read per watched DAG whatever the number of pages.
 * Log lines of a running TI are tailed the same way: one read per second per TI watched.
 */
import { Channel, queries, type Database } from '../core/index.ts';
import { gridOf, runSummary } from './routes/dags.ts';
import type { ApiContext } from './context.ts';

export type Send = (event: string, data: unknown) => void;

interface LogWatch {
  tiId: number;
  tryNumber: number;
  subscribers: Map<Send, number>;
}

const OVERVIEW = '';
const GRID_WINDOW = 25;

export class LiveHub {
  /** Watched DAG id (OVERVIEW for the DAG list) → its pages. */
  private readonly watchers = new Map<string, Set<Send>>();
  private readonly snapshots = new Map<string, Map<string, string>>();
  private readonly logWatches = new Map<string, LogWatch>();
  private reading = false;
  private again = false;
  private unlisten: (() => Promise<void>)[] = [];
  private timers: NodeJS.Timeout[] = [];
  private ctx!: ApiContext;

  constructor(private readonly opts: { fallbackMs?: number; logTailMs?: number } = {}) {}

  async start(ctx: ApiContext): Promise<void> {
    this.ctx = ctx;
    const db: Database = ctx.database;
    for (const channel of [Channel.SCHEDULER, Channel.WORKER, Channel.TRIGGERER]) {
      this.unlisten.push(await db.listen(channel, () => this.poke(), () => this.poke()));
    }
    this.timers.push(setInterval(() => this.watchers.size && this.poke(), this.opts.fallbackMs ?? 3000));
    this.timers.push(setInterval(() => void this.tailLogs(), this.opts.logTailMs ?? 1000));
    for (const t of this.timers) t.unref();
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    for (const u of this.unlisten) await u().catch(() => undefined);
    for (const pages of this.watchers.values()) for (const send of pages) send('bye', {});
    this.watchers.clear();
  }

  get pages(): number {
    let n = 0;
    for (const s of this.watchers.values()) n += s.size;
    return n;
  }

  /** Watch a DAG's grid (or, with null, every DAG's latest runs); returns the unsubscribe. */
  subscribe(dagId: string | null, send: Send): () => void {
    const key = dagId ?? OVERVIEW;
    let pages = this.watchers.get(key);
    if (!pages) {
      pages = new Set();
      this.watchers.set(key, pages);
    }
    pages.add(send);
    this.poke();
    return () => {
      pages.delete(send);
      if (!pages.size) {
        this.watchers.delete(key);
        this.snapshots.delete(key);
      }
    };
  }

  /** Tail a try's log lines after `afterId`; returns the unsubscribe. */
  subscribeLogs(tiId: number, tryNumber: number, afterId: number, send: Send): () => void {
    const key = `${tiId}/${tryNumber}`;
    let w = this.logWatches.get(key);
    if (!w) {
      w = { tiId, tryNumber, subscribers: new Map() };
      this.logWatches.set(key, w);
    }
    w.subscribers.set(send, afterId);
    const watch = w;
    return () => {
      watch.subscribers.delete(send);
      if (!watch.subscribers.size) this.logWatches.delete(key);
    };
  }

  /** Something changed (a NOTIFY, or an action of this server): read what pages watch. */
  poke(): void {
    if (this.reading) {
      this.again = true;
      return;
    }
    if (!this.watchers.size) return;
    this.reading = true;
    void this.read().finally(() => {
      this.reading = false;
      if (this.again) {
        this.again = false;
        this.poke();
      }
    });
  }

  private async read(): Promise<void> {
    for (const [key, pages] of [...this.watchers]) {
      try {
        const { event, payload, snapshot } = key === OVERVIEW ? await this.readOverview() : await this.readGrid(key);
        const before = this.snapshots.get(key);
        this.snapshots.set(key, snapshot);
        if (!before) continue;
        const changed = [...snapshot].filter(([k, v]) => before.get(k) !== v).map(([k]) => k);
        if (!changed.length) continue;
        const data = payload(new Set(changed));
        for (const send of pages) send(event, data);
      } catch {
        // The database may be restarting; the next notification or fallback read tries again.
      }
    }
  }

  private async readGrid(dagId: string) {
    const grid = await gridOf(this.ctx, dagId, GRID_WINDOW) ?? { tasks: [], runs: [], cells: [] as unknown[][] };
    const snapshot = new Map<string, string>();
    grid.runs.forEach((r, ri) => {
      snapshot.set(`run\u0000${r.runId}`, r.state);
      grid.tasks.forEach((t, ti) => snapshot.set(`${r.runId}\u0000${t.taskId}`, JSON.stringify(grid.cells[ri][ti])));
    });
    return {
      event: 'grid', snapshot,
      payload: (changed: Set<string>) => ({
        dagId,
        runs: grid.runs.filter((r) => changed.has(`run\u0000${r.runId}`)),
        cells: grid.runs.flatMap((r, ri) => grid.tasks.flatMap((t, ti) => (changed.has(`${r.runId}\u0000${t.taskId}`) ? [{ runId: r.runId, taskId: t.taskId, value: grid.cells[ri][ti] }] : []))),
      }),
    };
  }

  private async readOverview() {
    const dags = await queries.browse.dagsPage(this.ctx.database.db, { limit: 1000, offset: 0 });
    const latest = await queries.browse.latestRuns(this.ctx.database.db, dags.rows.map((d) => d.dagId), 5);
    const snapshot = new Map<string, string>();
    for (const d of dags.rows) snapshot.set(`dag\u0000${d.dagId}`, JSON.stringify([d.isPaused, latest.filter((l) => l.dag_id === d.dagId).map((l) => [l.run_id, l.state])]));
    return {
      event: 'dags', snapshot,
      payload: (changed: Set<string>) => ({
        dags: dags.rows.filter((d) => changed.has(`dag\u0000${d.dagId}`)).map((d) => ({
          dagId: d.dagId, isPaused: d.isPaused,
          latestRuns: latest.filter((l) => l.dag_id === d.dagId).map(runSummary),
        })),
      }),
    };
  }

  private async tailLogs(): Promise<void> {
    for (const w of [...this.logWatches.values()]) {
      const from = Math.min(...w.subscribers.values());
      try {
        const lines = await queries.browse.logsAfter(this.ctx.database.db, w.tiId, w.tryNumber, from, 2000);
        if (!lines.length) continue;
        for (const [send, after] of w.subscribers) {
          const fresh = lines.filter((l) => l.id > after).map((l) => ({ ...l, message: this.ctx.masker.mask(l.message) }));
          if (!fresh.length) continue;
          send('logs', { tryNumber: w.tryNumber, lines: fresh });
          w.subscribers.set(send, fresh[fresh.length - 1].id);
        }
      } catch {
        // Try again on the next tick.
      }
    }
  }
}
