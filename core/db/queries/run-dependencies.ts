/**
 * What ties a TI to more than its upstream TIs in the same run: a branch's skips, and the
 * previous run's TIs that `dependsOnPast` and `waitForDownstream` wait for (Airflow's
 * PrevDagrunDep: the previous run by logical date, whatever its state or type).
 */
import { sql, type SQL } from 'drizzle-orm';
import { Channel, resultRows, type Executor } from '../client.ts';
import { RunType, TaskState } from '../../model/states.ts';

const DONE_OK = [TaskState.SUCCESS, TaskState.SKIPPED];

/** Skip the not yet decided TIs (map index `mapIndex`) of `taskIds`: a branch did not follow them. */
export function skipTisStatement(runPk: number, taskIds: string[], mapIndex: number): SQL {
  return sql`update task_instances set state = ${TaskState.SKIPPED}, end_date = now(), duration = 0
    where run_pk = ${runPk} and map_index = ${mapIndex} and state = ${TaskState.NONE}
      and task_id in (select jsonb_array_elements_text(${JSON.stringify(taskIds)}::jsonb))`;
}

/**
 * The run of the same DAG just before `runPk` by logical date, or null for the first run. With
 * catchup, manual runs are passed over, as Airflow's previous scheduled run.
 */
export async function previousRunPk(ex: Executor, runPk: number, catchup: boolean): Promise<number | null> {
  const [row] = resultRows<{ id: number }>(await ex.execute(sql`
    select p.id from dag_runs r join dag_runs p on p.dag_id = r.dag_id and p.logical_date < r.logical_date
    where r.id = ${runPk} ${catchup ? sql`and p.run_type <> ${RunType.MANUAL}` : sql``} order by p.logical_date desc limit 1`));
  return row ? Number(row.id) : null;
}

export interface PastDependency {
  runPk: number;
  previousRunPk: number;
  taskId: string;
  /** With waitForDownstream: the task's direct downstream ids, whose previous TIs must be done too. */
  downstreamIds: string[] | null;
}

/**
 * True for a TI of `task_instances` (the table being updated) whose previous-run TI with the
 * same map index succeeded or was skipped. A missing previous TI passes only if no earlier run
 * has any TI of the task (Airflow's ignore_first_depends_on_past); otherwise the TI waits for
 * it. With waitForDownstream, every direct downstream task also has TIs in the previous run,
 * all succeeded or skipped.
 */
export function pastDoneCondition(dep: PastDependency, mapIndex: SQL = sql.raw('task_instances.map_index')): SQL {
  const own = sql`(exists (select 1 from task_instances p where p.run_pk = ${dep.previousRunPk} and p.task_id = ${dep.taskId}
      and p.map_index = ${mapIndex} and p.state in ${DONE_OK})
    or not exists (select 1 from task_instances h join dag_runs hr on hr.id = h.run_pk join dag_runs cur on cur.id = ${dep.runPk}
      where h.task_id = ${dep.taskId} and hr.dag_id = cur.dag_id and hr.logical_date < cur.logical_date))`;
  if (!dep.downstreamIds?.length) return own;
  const ids = sql`(select jsonb_array_elements_text(${JSON.stringify(dep.downstreamIds)}::jsonb))`;
  return sql`(${own} and not exists (select 1 from task_instances d where d.run_pk = ${dep.previousRunPk} and d.task_id in ${ids} and d.state not in ${DONE_OK})
    and (select count(distinct d.task_id) from task_instances d where d.run_pk = ${dep.previousRunPk} and d.task_id in ${ids}) = ${dep.downstreamIds.length})`;
}

/**
 * NOTIFY the schedulers of the running run after each of `runPks` (same DAG, next logical
 * date): a TI there may have waited for what just finished in these runs.
 */
export function wakeNextRunsStatement(runPks: number[]): SQL {
  return sql`select pg_notify(${Channel.SCHEDULER}, 'runs:' || string_agg(n.id::text, ',')) from (
      select (select x.id from dag_runs x where x.dag_id = r.dag_id and x.logical_date > r.logical_date and x.state = 'running'
        order by x.logical_date limit 1) as id
      from dag_runs r where r.id in (select jsonb_array_elements_text(${JSON.stringify(runPks)}::jsonb)::int)
    ) n where n.id is not null having count(*) > 0`;
}
