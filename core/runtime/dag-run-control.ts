/**
 * What a task on a worker may do to other DAGs' runs (`context.dagRuns`): queue one, as
 * `dags trigger` does (conf checked by that DAG's params schema), and read a run's state.
 * The DAG comes from the worker's DAG bag, so an id not in the DAG folder fails clearly.
 */
import { and, eq } from 'drizzle-orm';
import type { DagRunControl } from '../authoring/context.ts';
import type { Database } from '../db/client.ts';
import { dagRuns } from '../db/schema.ts';
import { UnknownDagError } from '../errors.ts';
import type { DagBag } from './dag-bag.ts';
import { triggerDagRun } from './runs.ts';

export function createDagRunControl(database: Database, dagBag: DagBag): DagRunControl {
  return {
    async trigger(dagId, { runId, conf = {} }) {
      if (!dagBag.dags.has(dagId)) await dagBag.refresh();
      const dag = dagBag.dags.get(dagId);
      if (!dag) throw new UnknownDagError(dagId, [...dagBag.dags.keys()].sort());
      const run = await triggerDagRun(database, dag, conf, runId === undefined ? {} : { runId });
      const [row] = await database.db.select({ logicalDate: dagRuns.logicalDate }).from(dagRuns).where(eq(dagRuns.id, run.runPk));
      return { runId: run.runId, logicalDate: row.logicalDate };
    },
    async state(dagId, runId) {
      const [row] = await database.db.select({ state: dagRuns.state }).from(dagRuns).where(and(eq(dagRuns.dagId, dagId), eq(dagRuns.runId, runId)));
      return row?.state ?? null;
    },
  };
}
