/**
 * `db clean`: deleting what finished runs left behind before a date (TIs, their history and
 * logs, XComs), dataset events, and triggers no TI waits on. Every statement deletes at most one
 * batch and commits on its own, so locks are held for one batch only and a busy scheduler never
 * waits long; run rows themselves stay (they are small, and keep `runs list` truthful).
 * Children go before their TIs, so an interrupted clean leaves nothing orphaned.
 */
import { sql, type SQL } from 'drizzle-orm';
import { resultRows, type Executor } from '../client.ts';
import { RunState } from '../../model/states.ts';

export const CLEANABLE_TABLES = ['logs', 'task_instance_history', 'xcom', 'task_instances', 'dataset_events', 'triggers'] as const;
export type CleanableTable = (typeof CLEANABLE_TABLES)[number];

export interface CleanOptions {
  before: Date;
  tables?: readonly CleanableTable[];
  /** Rows per statement (and so per transaction). */
  batchSize?: number;
  /** Called after each batch with the table and the rows it deleted. */
  onBatch?: (table: CleanableTable, rows: number) => void;
}

/** Runs per chunk: their TI ids are read once, then their children deleted batch by batch. */
const RUN_CHUNK = 200;

/** Delete in batches; returns rows deleted per table. */
export async function cleanBefore(ex: Executor, opts: CleanOptions): Promise<Record<CleanableTable, number>> {
  const tables = new Set(opts.tables ?? CLEANABLE_TABLES);
  const batch = opts.batchSize ?? 5000;
  const done = Object.fromEntries(CLEANABLE_TABLES.map((t) => [t, 0])) as Record<CleanableTable, number>;
  const drain = async (table: CleanableTable, statement: (limit: number) => SQL) => {
    for (;;) {
      const [row] = resultRows<{ n: number }>(await ex.execute(statement(batch)));
      const n = Number(row?.n ?? 0);
      done[table] += n;
      if (n) opts.onBatch?.(table, n);
      if (n < batch) return;
    }
  };
  const before = opts.before.toISOString();
  for (let lastRun = 0; ;) {
    const runs = resultRows<{ id: number }>(await ex.execute(sql`select id from dag_runs
      where id > ${lastRun} and state in (${RunState.SUCCESS}, ${RunState.FAILED}) and end_date < ${before}::timestamptz
      order by id limit ${RUN_CHUNK}`)).map((r) => Number(r.id));
    if (!runs.length) break;
    lastRun = runs[runs.length - 1];
    const runList = idArray(runs, 'int');
    const tiIds = resultRows<{ id: number }>(await ex.execute(sql`select id from task_instances where run_pk = any(${runList}) order by id`)).map((r) => Number(r.id));
    for (let i = 0; i < tiIds.length; i += batch) {
      const tis = idArray(tiIds.slice(i, i + batch), 'bigint');
      if (tables.has('logs')) await drain('logs', (n) => deleteCounted('logs', sql`select id from logs where ti_id = any(${tis}) limit ${n}`));
      if (tables.has('task_instance_history')) {
        await drain('task_instance_history', (n) => deleteCounted('task_instance_history', sql`select id from task_instance_history where ti_id = any(${tis}) limit ${n}`));
      }
    }
    if (tables.has('xcom')) {
      await drain('xcom', (n) => sql`with gone as (delete from xcom where ctid in (select ctid from xcom where run_pk = any(${runList}) limit ${n}) returning 1)
        select count(*)::int as n from gone`);
    }
    if (tables.has('task_instances')) {
      for (let i = 0; i < tiIds.length; i += batch) {
        const tis = idArray(tiIds.slice(i, i + batch), 'bigint');
        await drain('task_instances', (n) => deleteCounted('task_instances', sql`select id from task_instances where id = any(${tis}) limit ${n}`));
      }
    }
  }
  if (tables.has('dataset_events')) {
    // An event a DAG has not consumed yet would still trigger a run: it stays.
    await drain('dataset_events', (n) => deleteCounted('dataset_events', sql`select e.id from dataset_events e where e.timestamp < ${before}::timestamptz
      and not exists (select 1 from pending_dataset_events p where p.event_id = e.id) order by e.id limit ${n}`));
  }
  if (tables.has('triggers')) {
    await drain('triggers', (n) => deleteCounted('triggers', sql`select t.id from triggers t where t.created_date < ${before}::timestamptz
      and not exists (select 1 from task_instances ti where ti.trigger_id = t.id) order by t.id limit ${n}`));
  }
  return done;
}

/** Ids as one array parameter: a batch of thousands is one bind, not thousands. */
function idArray(ids: number[], type: 'int' | 'bigint'): SQL {
  return sql`${`{${ids.join(',')}}`}::${sql.raw(type)}[]`;
}

function deleteCounted(table: CleanableTable, ids: SQL): SQL {
  return sql`with gone as (delete from ${sql.identifier(table)} where id in (${ids}) returning 1) select count(*)::int as n from gone`;
}

/** What cleanBefore would delete, per table (a dry run). */
export async function countCleanable(ex: Executor, before: Date, tables: readonly CleanableTable[] = CLEANABLE_TABLES): Promise<Partial<Record<CleanableTable, number>>> {
  const b = before.toISOString();
  const oldTis = sql`select ti.id from task_instances ti join dag_runs r on r.id = ti.run_pk
    where r.state in (${RunState.SUCCESS}, ${RunState.FAILED}) and r.end_date < ${b}::timestamptz`;
  const counts: Record<CleanableTable, SQL> = {
    logs: sql`select count(*)::int as n from logs where ti_id in (${oldTis})`,
    task_instance_history: sql`select count(*)::int as n from task_instance_history where ti_id in (${oldTis})`,
    xcom: sql`select count(*)::int as n from xcom x join dag_runs r on r.id = x.run_pk where r.state in (${RunState.SUCCESS}, ${RunState.FAILED}) and r.end_date < ${b}::timestamptz`,
    task_instances: sql`select count(*)::int as n from (${oldTis}) t`,
    dataset_events: sql`select count(*)::int as n from dataset_events e where e.timestamp < ${b}::timestamptz and not exists (select 1 from pending_dataset_events p where p.event_id = e.id)`,
    triggers: sql`select count(*)::int as n from triggers t where t.created_date < ${b}::timestamptz and not exists (select 1 from task_instances ti where ti.trigger_id = t.id)`,
  };
  const out: Partial<Record<CleanableTable, number>> = {};
  for (const t of tables) out[t] = Number(resultRows<{ n: number }>(await ex.execute(counts[t]))[0]?.n ?? 0);
  return out;
}
