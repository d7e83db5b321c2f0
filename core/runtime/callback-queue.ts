/**
 * A worker's consumer of `callback_requests`: woken by the worker channel's "callbacks" NOTIFY
 * (and at each heartbeat, a net under a lost NOTIFY), it claims queued callbacks, runs each
 * with its DAG loaded, writes a task callback's log lines into the TI's log for that try, and
 * deletes the request. A request whose DAG or task is gone is dropped with a log line.
 */
import { eq } from 'drizzle-orm';
import type { Database } from '../db/client.ts';
import { dagRuns, taskInstances } from '../db/schema.ts';
import { claimCallbacks, deleteCallback, type CallbackRequest } from '../db/queries/callbacks.ts';
import { writeLogs } from '../db/queries/logs.ts';
import type { CallbackKind } from '../authoring/callbacks.ts';
import type { DagBag } from './dag-bag.ts';
import { Rerunner } from './rerunner.ts';
import { LogBuffer } from './task-log.ts';
import { errorFromText, runDagCallbacks, runTaskCallbacks } from './callbacks.ts';
import type { Lookups } from './task-context.ts';
import type { RunInfo } from './task-runner.ts';

const CLAIM_BATCH = 16;

export class CallbackQueue {
  private readonly loop = new Rerunner(() => this.drain(), (err) => this.log(`running queued callbacks failed: ${(err as Error).message}`));

  constructor(private readonly database: Database, private readonly dagBag: DagBag, private readonly lookups: Lookups,
    private readonly workerId: string, private readonly log: (message: string) => void) {}

  wake(): void {
    void this.loop.request();
  }

  async stop(): Promise<void> {
    this.loop.stop();
    await this.loop.idle;
  }

  private async drain(): Promise<void> {
    for (;;) {
      const claimed = await claimCallbacks(this.database.db, this.workerId, CLAIM_BATCH);
      for (const request of claimed) {
        await this.run(request).catch((err) => this.log(`callback request #${request.id} (${request.scope} ${request.kind}, DAG "${request.dagId}") failed: ${(err as Error).message}`));
        await deleteCallback(this.database.db, request.id);
      }
      if (claimed.length < CLAIM_BATCH) return;
    }
  }

  private async run(request: CallbackRequest): Promise<void> {
    if (!this.dagBag.dags.has(request.dagId)) await this.dagBag.refresh();
    const dag = this.dagBag.dags.get(request.dagId);
    const [run] = await this.database.db.select().from(dagRuns).where(eq(dagRuns.id, request.runPk));
    if (!dag || !run) {
      this.log(`dropping ${request.kind} callback of DAG "${request.dagId}": ${!dag ? 'the DAG is no longer in the DAG folder' : 'its run was deleted'}`);
      return;
    }
    const info: RunInfo = { logicalDate: run.logicalDate, dataIntervalStart: run.dataIntervalStart, dataIntervalEnd: run.dataIntervalEnd, conf: (run.conf ?? {}) as Record<string, unknown> };
    if (request.scope === 'dag') {
      await runDagCallbacks(dag, request.kind === 'success' ? 'success' : 'failed', run.runId, info, this.log);
      return;
    }
    const [ti] = request.tiId === null ? [] : await this.database.db.select().from(taskInstances).where(eq(taskInstances.id, request.tiId));
    const op = ti && dag.tasks.get(ti.taskId);
    if (!ti || !op) {
      this.log(`dropping ${request.kind} callback of DAG "${request.dagId}": its task instance or task is gone`);
      return;
    }
    const tryNumber = request.tryNumber ?? ti.tryNumber;
    const logs = new LogBuffer();
    await runTaskCallbacks(op, request.kind as CallbackKind, { ...ti, tryNumber }, info, dag,
      { database: this.database, lookups: this.lookups }, logs, errorFromText(request.error));
    const lines = logs.drain();
    await writeLogs(this.database.db, lines.map((l) => ({ tiId: ti.id, tryNumber, ts: l.ts, level: l.level, message: l.message })));
  }
}
