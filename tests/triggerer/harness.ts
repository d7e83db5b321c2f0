/**
 * In-process deferral harness: a scheduler, a worker and (optionally) a triggerer on one
 * in-memory PGlite database, plus the state the defer-* fixture DAGs share with the test
 * through globalThis (counters bumped by triggers and operators, gates that release them).
 */
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { sql } from 'drizzle-orm';
import {
  openDatabase, queries, triggerDagRun, DagBag, Worker, RunState, TaskState,
  type Database, type WorkerOptions,
} from '../../core/index.ts';
import { Scheduler } from '../../scheduler/index.ts';
import { Triggerer, type TriggererOptions } from '../../triggerer/index.ts';
import { waitFor } from '../helpers/pg.ts';

export const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));

/** Must match the object the fixture DAG files keep on globalThis. */
interface DeferTestShared {
  counters: Record<string, number>;
  gates: Record<string, boolean>;
}

export function shared(): DeferTestShared {
  const g = globalThis as { __updraftDeferTest?: DeferTestShared };
  g.__updraftDeferTest ??= { counters: {}, gates: {} };
  return g.__updraftDeferTest;
}

export const counter = (name: string): number => shared().counters[name] ?? 0;
export const openGate = (name: string): void => { shared().gates[name] = true; };

export function resetShared(): void {
  const s = shared();
  for (const k of Object.keys(s.counters)) delete s.counters[k];
  for (const k of Object.keys(s.gates)) delete s.gates[k];
}

export interface StackOptions {
  worker?: Partial<WorkerOptions>;
  /** false: start no triggerer yet (see `startTriggerer`). */
  triggerer?: Partial<TriggererOptions> | false;
}

export class Stack {
  readonly schedulerLog: string[] = [];
  readonly workerLog: string[] = [];
  readonly triggererLog: string[] = [];
  scheduler!: Scheduler;
  worker!: Worker;
  triggerer?: Triggerer;

  private constructor(readonly database: Database, readonly bag: DagBag) {}

  static async open(bag: DagBag, opts: StackOptions = {}): Promise<Stack> {
    const database = await openDatabase({ dataDir: 'memory://' });
    await database.migrate();
    const s = new Stack(database, bag);
    s.scheduler = await Scheduler.create({
      database, dagBag: bag, watchFiles: false, createScheduledRuns: false, zombieThresholdMs: 3_600_000,
      log: (m) => s.schedulerLog.push(m),
    });
    // The first pass writes the DAG table, so runs triggered next start at once.
    await s.scheduler.wake();
    s.worker = await Worker.create({ database, dagBag: bag, slots: 32, log: (m) => s.workerLog.push(m), ...opts.worker });
    if (opts.triggerer !== false) await s.startTriggerer(opts.triggerer ?? {});
    return s;
  }

  async startTriggerer(opts: Partial<TriggererOptions> = {}): Promise<Triggerer> {
    this.triggerer = await Triggerer.create({ database: this.database, log: (m) => this.triggererLog.push(m), ...opts });
    return this.triggerer;
  }

  async trigger(dagId: string): Promise<{ runPk: number; runId: string }> {
    return triggerDagRun(this.database, this.bag.get(dagId));
  }

  /** waitFor, with the services' recent log lines added to a timeout's message. */
  async wait<T>(check: () => Promise<T | null | undefined | false>, what: string, timeoutMs = 60_000): Promise<T> {
    try {
      return await waitFor(check, what, timeoutMs);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${this.describe()}`);
    }
  }

  /** Wait for the run to end (success or failed) and return its state. */
  async finished(runPk: number, timeoutMs = 60_000): Promise<string> {
    return this.wait(async () => {
      const run = await queries.dagRuns.getRunByPk(this.database.db, runPk);
      return run && (run.state === RunState.SUCCESS || run.state === RunState.FAILED) ? run.state : null;
    }, `run ${runPk} to finish`, timeoutMs);
  }

  async ti(runPk: number, taskId: string) {
    const row = (await queries.dagRuns.runTaskInstances(this.database.db, runPk)).find((t) => t.taskId === taskId);
    if (!row) throw new Error(`run ${runPk} has no TI ${taskId}`);
    return row;
  }

  async tis(runPk: number) {
    return queries.dagRuns.runTaskInstances(this.database.db, runPk);
  }

  /** Wait until the TI is in `state`; returns the row. */
  async waitState(runPk: number, taskId: string, state: string, timeoutMs = 60_000) {
    return this.wait(async () => {
      const row = await this.ti(runPk, taskId);
      return row.state === state ? row : null;
    }, `${taskId} to be ${state}`, timeoutMs);
  }

  async history(tiId: number) {
    return this.database.rows<{ try_number: number; state: string; error: string | null }>(
      sql`select try_number, state, error from task_instance_history where ti_id = ${tiId} order by id`);
  }

  async triggerRows() {
    return this.database.rows<{ id: number; name: string; kwargs: string; triggerer_id: string | null }>(
      sql`select id, name, kwargs, triggerer_id from triggers order by id`);
  }

  async xcom(runPk: number, taskId: string, key = 'return_value'): Promise<unknown> {
    return queries.xcom.readXCom(this.database.db, runPk, taskId, key, -1);
  }

  async logLines(tiId: number): Promise<string[]> {
    return (await queries.logs.readLogs(this.database.db, tiId)).map((l) => l.message);
  }

  describe(): string {
    return [['scheduler', this.schedulerLog], ['worker', this.workerLog], ['triggerer', this.triggererLog]]
      .map(([n, lines]) => `[${n as string}] ${(lines as string[]).slice(-10).join(' | ')}`).join('\n');
  }

  async close(): Promise<void> {
    await this.triggerer?.stop();
    await this.worker?.stop();
    await this.scheduler?.stop();
    await this.database.close();
  }
}

export { TaskState, RunState };

/**
 * The hooks every deferral suite shares: load the fixture folder once, reset the shared
 * counters and gates before each test, and close the test's stack after it.
 */
export function useDeferSuite(fixtureName: string) {
  let bag: DagBag;
  let current: Stack | undefined;
  beforeAll(async () => {
    bag = await DagBag.load(fixture(fixtureName));
    expect([...bag.errors]).toEqual([]);
  });
  beforeEach(() => resetShared());
  afterEach(async () => {
    await current?.close();
    current = undefined;
  });
  return {
    get bag(): DagBag {
      return bag;
    },
    async open(options?: StackOptions): Promise<Stack> {
      current = await Stack.open(bag, options);
      return current;
    },
  };
}
