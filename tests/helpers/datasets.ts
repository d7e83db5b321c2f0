/** What the dataset suites share: the fixture DAGs, the services that run them, and event rows. */
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { DagBag, Worker, conditionHolds, queries, triggerDagRun, type Dag, type Database } from '../../core/index.ts';
import { Scheduler } from '../../scheduler/index.ts';
import { Triggerer } from '../../triggerer/index.ts';

export const DATASET_FIXTURES = fileURLToPath(new URL('../fixtures/datasets', import.meta.url));

export interface EventRow {
  uri: string;
  task: string | null;
  mapIndex: number | null;
  extra: Record<string, unknown>;
}

/** Every dataset event, oldest first, as (uri, source task, map index, extra). */
export async function eventRows(database: Database, where = sql`true`): Promise<EventRow[]> {
  const rows = await database.rows<{ uri: string; task: string | null; map_index: number | null; extra: Record<string, unknown> }>(sql`
    select d.uri, e.source_task_id as task, e.source_map_index as map_index, e.extra
    from dataset_events e join datasets d on d.id = e.dataset_id where ${where} order by e.id`);
  return rows.map((r) => ({ uri: r.uri, task: r.task, mapIndex: r.map_index === null ? null : Number(r.map_index), extra: r.extra }));
}

/** Pending (unconsumed) events per consuming DAG: { dagId: [uri, ...] }, URIs sorted. */
export async function pendingByDag(database: Database): Promise<Record<string, string[]>> {
  const rows = await database.rows<{ dag_id: string; uri: string }>(sql`
    select p.dag_id, d.uri from pending_dataset_events p join datasets d on d.id = p.dataset_id order by p.dag_id, d.uri, p.event_id`);
  const out: Record<string, string[]> = {};
  for (const r of rows) (out[r.dag_id] ??= []).push(r.uri);
  return out;
}

/** A scheduler (optionally creating scheduled and dataset-triggered runs), a worker and a triggerer. */
export class Services {
  private constructor(readonly database: Database, readonly bag: DagBag, readonly scheduler: Scheduler, readonly worker: Worker,
    readonly triggerer: Triggerer, readonly log: string[]) {}

  static async start(database: Database, opts: { createScheduledRuns?: boolean } = {}): Promise<Services> {
    const bag = await DagBag.load(DATASET_FIXTURES);
    if (bag.errors.size) throw new Error(`fixture errors: ${[...bag.errors.values()].join('; ')}`);
    const log: string[] = [];
    const scheduler = await Scheduler.create({
      database, dagBag: bag, watchFiles: false, createScheduledRuns: opts.createScheduledRuns ?? false, zombieThresholdMs: 3_600_000, log: (m) => log.push(m),
    });
    await scheduler.wake();
    const worker = await Worker.create({ database, dagBag: bag, slots: 8, log: (m) => log.push(`[worker] ${m}`) });
    const triggerer = await Triggerer.create({ database, log: (m) => log.push(`[triggerer] ${m}`) });
    return new Services(database, bag, scheduler, worker, triggerer, log);
  }

  trigger(dagId: string) {
    return triggerDagRun(this.database, this.bag.get(dagId));
  }

  async stop(): Promise<void> {
    await this.triggerer.stop();
    await this.worker.stop();
    await this.scheduler.stop();
  }
}

/** Whether no DAG of `dags` has pending events that satisfy its condition (a pass would create nothing). */
export async function settled(database: Database, dags: Iterable<Dag>): Promise<boolean> {
  for (const d of dags) {
    if (d.datasetSchedule && conditionHolds(d.datasetSchedule, await queries.datasets.updatedDatasetUris(database.db, d.dagId))) return false;
  }
  return true;
}

/**
 * The ledger of one consuming DAG: every event on its datasets (after `afterId`) should be
 * either linked to exactly one of its runs or still pending, never both, never twice.
 */
export async function ledger(database: Database, dagId: string, afterId = 0): Promise<{ events: number[]; accounted: number[] }> {
  const ids = async (query: ReturnType<typeof sql>) => (await database.rows<{ id: number }>(query)).map((r) => Number(r.id)).sort((a, b) => a - b);
  const events = await ids(sql`select e.id from dataset_events e join dag_schedule_datasets s on s.dataset_id = e.dataset_id
    where s.dag_id = ${dagId} and e.id > ${afterId}`);
  const accounted = await ids(sql`select l.event_id as id from dag_run_dataset_events l join dag_runs r on r.id = l.run_pk
    where r.dag_id = ${dagId} and l.event_id > ${afterId}
    union all select event_id from pending_dataset_events where dag_id = ${dagId} and event_id > ${afterId}`);
  return { events, accounted };
}
