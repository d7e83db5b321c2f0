/**
 * Branching and short-circuit:
 * - `inspect` measures the day's batch (conf `rows`, default 120);
 * - `choose_path` branches on its size: over 1,000 rows to `full_reload`, else to
 *   `incremental`; the path not taken is skipped;
 * - `publish` joins both paths with none_failed_min_one_success, so it runs whichever was taken
 *   (with the default all_success it would be skipped along with the untaken path);
 * - `any_new_rows` short-circuits: with 0 rows, `announce` is skipped.
 * Trigger with `{"rows": 5000}` for the full reload, `{"rows": 0}` to see the short-circuit.
 */
import { dag, task, chain, TriggerRule } from 'updraft';

interface Batch {
  rows: number;
}

const inspect = task('inspect', async (_: void, ctx): Promise<Batch> => ({ rows: Number(ctx.conf.rows ?? 120) }));
// A plain function: it runs in a worker thread, and its result still decides the branch.
const choosePath = task.branch('choose_path', ({ batch }: { batch: Batch }) => (batch.rows > 1000 ? 'full_reload' : 'incremental'));
const load = (taskId: string) => task(taskId, async ({ batch }: { batch: Batch }, ctx) => `${ctx.taskId}: ${batch.rows} rows`);
const publish = task({ taskId: 'publish', triggerRule: TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS }, async (_: void, ctx) => `published ${ctx.logicalDate}`);
const anyNewRows = task.shortCircuit('any_new_rows', async ({ batch }: { batch: Batch }) => batch.rows > 0);
const announce = task('announce', async ({ rows }: { rows: boolean }) => (rows ? 'new rows announced' : 'nothing to announce'));

export default dag({ dagId: 'branching', schedule: '@daily', startDate: '2026-01-01T00:00:00Z', tags: ['example'] }, () => {
  const batch = inspect();
  const path = choosePath({ batch });
  const joined = publish();
  chain(path, [load('full_reload')({ batch }), load('incremental')({ batch })], joined);
  chain(joined, announce({ rows: anyNewRows({ batch }) }));
});
