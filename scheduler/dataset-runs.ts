/**
 * Dataset-triggered runs. A DAG scheduled on datasets gets a run once its condition holds over
 * its pending events (those recorded since its last dataset-triggered run): all() needs a new
 * event for every dataset, any() for one. Creating the run consumes the pending events and links
 * them to the run, in one transaction under the DAG row's lock, so two schedulers can never both
 * create a run from the same events: the second skips the locked row, and afterwards finds
 * nothing pending. A paused DAG is skipped and its pending events wait.
 */
import { conditionHolds, queries, RunType, type Dag, type Database, type Tx } from '../core/index.ts';

/** Create the runs that are due; returns how many. */
export async function createDatasetTriggeredRuns(database: Database, dags: Iterable<Dag>): Promise<number> {
  const consumers = new Map<string, Dag>();
  for (const d of dags) if (d.datasetSchedule) consumers.set(d.dagId, d);
  if (!consumers.size) return 0;
  let created = 0;
  for (const dagId of await queries.datasets.dagsWithPendingEvents(database.db, [...consumers.keys()])) {
    if (await database.db.transaction((tx) => createRunIfDue(tx, consumers.get(dagId)!))) created++;
  }
  return created;
}

async function createRunIfDue(tx: Tx, dag: Dag): Promise<boolean> {
  const row = await queries.datasets.lockDagForDatasetRun(tx, dag.dagId);
  // Locked: another scheduler is deciding this DAG right now.
  if (!row || row.isPaused) return false;
  if (!conditionHolds(dag.datasetSchedule!, await queries.datasets.updatedDatasetUris(tx, dag.dagId))) return false;
  const events = await queries.datasets.consumePendingEvents(tx, dag.dagId);
  if (!events.length) return false;
  // Airflow's data interval for such a run: from the earliest to the latest source run's
  // interval, or the event's own time when it did not come from a run.
  const starts = events.map((e) => (e.sourceIntervalStart ?? e.timestamp).getTime());
  const ends = events.map((e) => (e.sourceIntervalEnd ?? e.timestamp).getTime());
  const now = Date.now();
  // The logical date is the creation time; a manual run in the same millisecond moves it on by one.
  for (let bump = 0; bump < 100; bump++) {
    const logicalDate = new Date(now + bump);
    const runPk = await queries.dagRuns.createRun(tx, {
      dagId: dag.dagId, runId: `dataset_triggered__${logicalDate.toISOString()}`, runType: RunType.DATASET_TRIGGERED,
      logicalDate, dataIntervalStart: new Date(Math.min(...starts)), dataIntervalEnd: new Date(Math.max(...ends)), conf: {}, tags: dag.runTags,
    });
    if (runPk !== null) {
      await queries.datasets.linkRunEvents(tx, runPk, events.map((e) => e.id));
      return true;
    }
  }
  throw new Error(`DAG "${dag.dagId}": no free logical date for a dataset-triggered run near ${new Date(now).toISOString()}`);
}
