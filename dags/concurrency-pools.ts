/**
 * Seed 001, pools: limits across all runs and all workers. Five queries share the `database`
 * pool (2 slots, declared in updraft.config.json), so at most two run at once anywhere; the
 * `api` pool (4 slots) caps the fetches. A TI's slot is a lease held while it runs: if its
 * worker dies, the slot comes back when the zombie is reaped.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { dag, task } from 'updraft';

const query = task({ taskId: 'query', pool: 'database' }, async ({ table }: { table: string }, ctx) => {
  await sleep(500, undefined, { signal: ctx.signal });
  return { table, rows: table.length * 100 };
});

const fetchApi = task({ taskId: 'fetch', pool: 'api' }, async ({ page }: { page: number }, ctx) => {
  await sleep(300, undefined, { signal: ctx.signal });
  return page;
});

export default dag({ dagId: 'concurrency_pools', schedule: '@daily', startDate: '2026-01-01T00:00:00Z', tags: ['example', 'seed-001'] }, () => {
  query.expand({ table: ['customers', 'orders', 'items', 'refunds', 'events'] });
  fetchApi.expand({ page: [1, 2, 3, 4, 5, 6, 7, 8] });
});
