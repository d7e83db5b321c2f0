/**
 * Creating runs on request (manual triggers, `dags test`): conf is validated by the DAG's
 * params schema here, at the edge, so a bad conf never reaches a task.
 */
import type { Dag } from '../authoring/dag.ts';
import { Channel, notify, type Database } from '../db/client.ts';
import { createRun } from '../db/queries/dag-runs.ts';
import { UpdraftError } from '../errors.ts';
import { RunType } from '../model/states.ts';

export interface TriggeredRun {
  runPk: number;
  runId: string;
}

export interface TriggerOptions {
  runId?: string;
  /** Run-queue priority: higher starts first (default 0). */
  priority?: number;
  /** Extra run tags, on top of the DAG's runTags. */
  tags?: Record<string, string>;
}

export async function triggerDagRun(database: Database, dag: Dag, conf: Record<string, unknown> = {}, options: TriggerOptions | string = {}): Promise<TriggeredRun> {
  const { runId, priority = 0, tags = {} } = typeof options === 'string' ? { runId: options } : options;
  dag.parseConf(conf);
  const logicalDate = new Date();
  const id = runId ?? `manual__${logicalDate.toISOString()}`;
  return database.db.transaction(async (tx) => {
    const runPk = await createRun(tx, {
      dagId: dag.dagId, runId: id, runType: RunType.MANUAL, logicalDate,
      dataIntervalStart: logicalDate, dataIntervalEnd: logicalDate, conf, priority, tags: { ...dag.runTags, ...tags },
    });
    if (runPk === null) throw new UpdraftError(`DAG "${dag.dagId}" already has a run "${id}" or one at ${logicalDate.toISOString()}; pick another run id`);
    await notify(tx, Channel.SCHEDULER, 'run');
    return { runPk, runId: id };
  });
}
