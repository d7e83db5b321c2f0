/**
 * Shared by the concurrency suites: a fresh PostgreSQL database, a scheduler and workers as
 * real `updraft` processes (through the colleague's Procs), runs triggered from the CLI, and
 * the intervals tasks report, from which the largest number running at once is computed.
 */
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { openDatabase, queries, RunState, type Database } from '../../core/index.ts';
import { createTestDatabase, waitFor, type TestPg } from '../helpers/pg.ts';
import { Procs, type Proc } from '../helpers/int-procs.ts';

export const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
const READY = /updraft (scheduler|worker) (\S+):/;

export interface Interval {
  start: number;
  end: number;
}

/** The most intervals open at one instant; [start, end), so touching intervals do not overlap. */
export function maxOverlap(intervals: readonly Interval[]): number {
  const events = intervals.flatMap((i) => [[i.start, 1], [i.end, -1]] as const);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let max = 0;
  for (const [, d] of events) max = Math.max(max, (open += d));
  return max;
}

export class Cluster {
  procs!: Procs;

  private constructor(readonly pg: TestPg, readonly database: Database) {}

  static async create(prefix: string): Promise<Cluster> {
    const pg = await createTestDatabase(prefix);
    const database = await openDatabase({ databaseUrl: pg.url });
    await database.migrate();
    return new Cluster(pg, database);
  }

  /** New processes get `env` on top of the database URL; call once per test. */
  reset(env: Record<string, string>): Procs {
    this.procs = new Procs({ DATABASE_URL: this.pg.url, ...env });
    return this.procs;
  }

  /** Start a service and return it with its job id once it says it is up. */
  async service(name: string, args: string[], env: Record<string, string> = {}): Promise<{ proc: Proc; id: string }> {
    const proc = this.procs.start(name, args, env);
    return { proc, id: (await this.procs.waitForOutput(proc, READY))[2] };
  }

  /** A scheduler and `workers` workers with `slots` slots each. */
  async services(workers: number, slots: number, env: Record<string, string> = {}) {
    const started = await Promise.all([
      this.service('scheduler', ['scheduler'], env),
      ...Array.from({ length: workers }, (_, i) => this.service(`worker-${i + 1}`, ['worker', '--slots', String(slots)], env)),
    ]);
    return { scheduler: started[0], workers: started.slice(1) };
  }

  /** `updraft <args>`, which must succeed; returns its output. */
  async cli(args: string[], env: Record<string, string> = {}): Promise<string> {
    const out = await this.procs.run(args, env);
    if (out.code !== 0) throw new Error(`updraft ${args.join(' ')} exited ${out.code}:\n${out.output}`);
    return out.output;
  }

  /** `updraft dags trigger`; returns the new run's pk. */
  async trigger(dagId: string, extra: string[] = []): Promise<number> {
    const out = await this.cli(['dags', 'trigger', dagId, ...extra]);
    const runId = out.match(new RegExp(`queued run (\\S+) of ${dagId.replace(/\./g, '\\.')}`))![1];
    return (await queries.dagRuns.getRun(this.database.db, runId, dagId))[0].id;
  }

  async runState(runPk: number): Promise<string | undefined> {
    return (await queries.dagRuns.getRunByPk(this.database.db, runPk))?.state;
  }

  async finished(runPk: number, timeoutMs = 120_000): Promise<string> {
    return waitFor(async () => {
      const s = await this.runState(runPk);
      return s === RunState.SUCCESS || s === RunState.FAILED ? s : null;
    }, `run ${runPk} to finish`, timeoutMs, 100);
  }

  /** What each TI of `taskIds` returned, keyed "taskId[mapIndex]". */
  async results<T = Interval>(runPk: number, taskIds: string[]): Promise<Map<string, T>> {
    const rows = await this.database.rows<{ task_id: string; map_index: number; value: T }>(sql`
      select task_id, map_index, value from xcom where run_pk = ${runPk} and key = 'return_value' and task_id in ${taskIds}
      order by task_id, map_index`);
    return new Map(rows.map((r) => [`${r.task_id}[${r.map_index}]`, r.value]));
  }

  async intervals(runPk: number, taskIds: string[]): Promise<Interval[]> {
    return [...(await this.results(runPk, taskIds)).values()];
  }

  async close(): Promise<void> {
    await this.procs?.stopAll();
    await this.database.close();
    await this.pg.drop();
  }
}
