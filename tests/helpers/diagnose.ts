/**
 * What a failed multi-process test prints about the database, so a hang explains itself: TI
 * states (and every unfinished TI), trigger rows with their owners, and each service's
 * heartbeat measured on the database's own clock.
 */
import postgres from 'postgres';

export async function databaseReport(url: string): Promise<string> {
  const sql = postgres(url, { max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    const states = await sql`select state, try_number, count(*)::int as n from task_instances group by 1, 2 order by 1, 2`;
    const open = await sql`select id, dag_id, task_id, map_index, run_id, state, try_number, worker_id, trigger_id, scheduled_at, start_date
      from task_instances where state not in ('success', 'failed', 'skipped', 'upstream_failed', 'removed') order by id limit 50`;
    const triggers = await sql`select t.id, t.name, t.triggerer_id, t.claimed_at, t.created_date,
        (select count(*)::int from task_instances ti where ti.trigger_id = t.id and ti.state = 'deferred') as waiting
      from triggers t order by t.id limit 50`;
    const owners = await sql`select triggerer_id, count(*)::int as n from triggers group by 1`;
    const jobs = await sql`select id, job_type, state, latest_heartbeat, round(extract(epoch from now() - latest_heartbeat)::numeric, 2) as age_s
      from jobs order by start_date`;
    const runs = await sql`select id, dag_id, run_id, state from dag_runs order by id limit 20`;
    const table = (title: string, rows: readonly Record<string, unknown>[]) =>
      `-- ${title} (${rows.length})\n${rows.map((r) => JSON.stringify(r)).join('\n')}`;
    return [
      table('TIs by state and try', states), table('unfinished TIs (first 50)', open), table('runs', runs),
      table('trigger rows by owner', owners), table('trigger rows (first 50)', triggers), table('jobs, heartbeat age by the database clock', jobs),
    ].join('\n');
  } catch (err) {
    return `-- database state unavailable: ${(err as Error).message}`;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => undefined);
  }
}
