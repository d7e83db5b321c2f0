/** Small database helpers shared by the integration suites. */
import { sql } from 'drizzle-orm';
import { queries, RunType, type Dag, type Database } from '../../core/index.ts';

/** Make `dags` the DAG table's content (the scheduler's view of the DAG folder). */
export async function syncDags(database: Database, dags: Dag[]): Promise<void> {
  await database.db.transaction((tx) => queries.dags.syncDagBag(tx, dags, new Map()));
}

/** A queued manual run at `logicalDate`; returns its pk. */
export async function newRun(database: Database, dag: Dag, logicalDate: Date, runId = `manual__${logicalDate.toISOString()}`): Promise<number> {
  const pk = await queries.dagRuns.createRun(database.db, {
    dagId: dag.dagId, runId, runType: RunType.MANUAL, logicalDate, dataIntervalStart: logicalDate, dataIntervalEnd: logicalDate, conf: {},
  });
  if (pk === null) throw new Error(`run ${runId} of ${dag.dagId} already exists`);
  return pk;
}

export function startRuns(database: Database, dag: Dag) {
  return database.db.transaction((tx) => queries.dagRuns.startQueuedRuns(tx, new Map([[dag.dagId, dag]]), { maxConcurrentRuns: -1, runTagLimits: [] }));
}

export type TiRow = Awaited<ReturnType<typeof queries.dagRuns.runTaskInstances>>[number];

/** The run's task instances by task id. */
export async function tiMap(database: Database, runPk: number): Promise<Map<string, TiRow>> {
  return new Map((await queries.dagRuns.runTaskInstances(database.db, runPk)).map((t) => [t.taskId, t]));
}

export async function setTiState(database: Database, runPk: number, taskId: string, state: string): Promise<void> {
  await database.db.execute(sql`update task_instances set state = ${state} where run_pk = ${runPk} and task_id = ${taskId}`);
}

export async function count(database: Database, query: ReturnType<typeof sql>): Promise<number> {
  const [row] = await database.rows<{ n: number | string }>(query);
  return Number(row.n);
}

export const DAY = 86_400_000;
/** 00:00 UTC today. */
export const todayUtc = (now = Date.now()) => new Date(Math.floor(now / DAY) * DAY);
