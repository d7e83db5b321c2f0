/** Limit keys of TIs (see authoring/limits.ts): written when TIs are created or expanded. */
import { sql } from 'drizzle-orm';
import type { Executor } from '../client.ts';
import type { Dag } from '../../authoring/dag.ts';

/** Attach each TI of `taskIds` in run `runPk` to the limit keys its task is subject to. */
export async function attachLimitKeys(ex: Executor, runPk: number, dag: Dag, taskIds: Iterable<string>): Promise<void> {
  const rows: { taskId: string; key: string; limit: number }[] = [];
  for (const taskId of taskIds) for (const k of dag.limitKeys(taskId, runPk)) rows.push({ taskId, ...k });
  if (!rows.length) return;
  const values = sql.join(rows.map((r) => sql`(${r.taskId}::text, ${r.key}::text, ${r.limit}::int)`), sql`, `);
  await ex.execute(sql`
    insert into ti_limit_keys (ti_id, key, "limit")
    select t.id, v.key, v.lim from task_instances t join (values ${values}) as v(task_id, key, lim) on v.task_id = t.task_id
    where t.run_pk = ${runPk}
    on conflict do nothing`);
}
