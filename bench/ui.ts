/**
 * `npm run bench -- ui --json`: the web UI on PostgreSQL holding a 500-task DAG with 100
 * finished runs (50,000 TIs, filled with generate_series). Measures:
 * - the grid API (GET /api/v1/dags/ui_grid/grid, the default 25 runs × 500 tasks) over a
 *   logged-in keep-alive connection: 300 requests one after another, p50 and p99;
 * - the grid page in headless Chromium: navigation start → the page's `grid-painted` mark,
 *   the median of 10 loads after one warm-up;
 * - a live update: a TI's state changed in a transaction that NOTIFYs as a worker's does;
 *   from just before that transaction is sent to the moment the open page's cell shows the
 *   new state (a MutationObserver stamps Date.now(); same host clock), 40 changes, p50.
 */
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { chromium, type Browser } from 'playwright-core';
import { DagBag, openDatabase, queries } from '../core/index.ts';
import { createApiServer, hashPassword } from '../api/index.ts';
import { ApiClient } from '../tests/helpers/api-client.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../tests/helpers/browser.ts';
import { ROOT, freshDatabase, log, percentile, round } from './harness.ts';

const RUNS = 100;
const DAG_ID = 'ui_grid';

export async function uiBench(json: boolean): Promise<Record<string, unknown>> {
  const pg = await freshDatabase('updraft_bench_ui');
  const database = await openDatabase({ databaseUrl: pg.url });
  let browser: Browser | null = null;
  let server: Awaited<ReturnType<typeof createApiServer>> | null = null;
  try {
    await database.migrate();
    const bag = await DagBag.load(path.join(ROOT, 'bench/dags-ui'));
    await database.db.transaction((tx) => queries.dags.syncDagBag(tx, bag.dags.values(), bag.errors));
    const taskIds = [...bag.dags.get(DAG_ID)!.tasks.keys()];
    log(json, `filling ${RUNS} runs × ${taskIds.length} tasks…`);
    await database.db.execute(sql`insert into dag_runs (dag_id, run_id, run_type, state, logical_date, queued_at, start_date, end_date)
      select ${DAG_ID}, 'scheduled__' || g, 'scheduled', case when g % 10 = 0 then 'failed' else 'success' end,
        now() - (${RUNS} - g) * interval '1 hour', now(), now(), now() from generate_series(1, ${RUNS}) g`);
    await database.db.execute(sql`insert into task_instances (run_pk, dag_id, run_id, task_id, state, try_number, max_tries, operator, start_date, end_date, duration)
      select r.id, r.dag_id, r.run_id, t.task_id, case when r.state = 'failed' and t.n % 97 = 0 then 'failed' when r.state = 'failed' and t.n % 97 > 90 then 'upstream_failed' else 'success' end,
        1, 1, '@task', now(), now(), 0.1
      from dag_runs r, unnest(${`{${taskIds.join(',')}}`}::text[]) with ordinality as t(task_id, n)`);
    await database.db.execute(sql`vacuum analyze`);
    const [{ n: tis }] = await database.rows<{ n: number }>(sql`select count(*)::int as n from task_instances`);

    server = await createApiServer({
      database, dagBag: bag, store: null, sessionSecret: 'bench', port: 0,
      config: { auth: 'password', host: '127.0.0.1', port: 0, sessionTtlMs: 3_600_000, tokens: [], users: [{ username: 'bench', role: 'admin', password: await hashPassword('bench-pass') }] },
    });
    const client = new ApiClient(server.url);
    await client.login('bench', 'bench-pass');

    log(json, 'grid API…');
    const gridPath = `/api/v1/dags/${DAG_ID}/grid`;
    for (let i = 0; i < 20; i++) await client.get(gridPath);
    const apiMs: number[] = [];
    let cells = 0;
    for (let i = 0; i < 300; i++) {
      const t = performance.now();
      const res = await client.get(gridPath);
      apiMs.push(performance.now() - t);
      if (res.status !== 200) throw new Error(`grid API answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
      cells = res.body.cells.length * res.body.tasks.length;
    }
    apiMs.sort((a, b) => a - b);

    log(json, 'grid paint in Chromium…');
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const cookie = client.headers().cookie!.split('=');
    await context.addCookies([{ name: cookie[0], value: cookie.slice(1).join('='), url: server.url }]);
    const page = await context.newPage();
    const paintMs: number[] = [];
    for (let i = 0; i < 11; i++) {
      await page.goto(`${server.url}/dags/${DAG_ID}/grid`);
      const mark = await page.waitForFunction("performance.getEntriesByName('grid-painted')[0]?.startTime", undefined, { timeout: 30_000 });
      if (i > 0) paintMs.push(Number(await mark.jsonValue()));
    }
    paintMs.sort((a, b) => a - b);
    const shown = await page.locator('#grid [data-run][data-task]').count();

    log(json, 'live updates…');
    // The newest run's TIs, in the page's window; each change flips one TI's state.
    const [newest] = await database.rows<{ id: number; run_id: string }>(sql`select id, run_id from dag_runs where dag_id = ${DAG_ID} order by logical_date desc limit 1`);
    const liveMs: number[] = [];
    for (let i = 0; i < 40; i++) {
      const taskId = taskIds[(i * 37) % taskIds.length];
      const before = await page.locator(`#grid [data-run="${newest.run_id}"][data-task="${taskId}"]`).getAttribute('data-state');
      const next = before === 'failed' ? 'success' : 'failed';
      // Browser-side: stamp the moment the cell shows the new state.
      await page.evaluate(`(() => {
        const sel = '#grid [data-run="' + CSS.escape(${JSON.stringify('__RUN__')}) + '"][data-task="' + CSS.escape(${JSON.stringify('__TASK__')}) + '"]';
        window.seenAt = undefined;
        const observer = new MutationObserver(() => {
          if (document.querySelector(sel)?.getAttribute('data-state') === ${JSON.stringify('__STATE__')}) {
            window.seenAt = Date.now();
            observer.disconnect();
          }
        });
        observer.observe(document.getElementById('grid'), { attributes: true, subtree: true, childList: true, attributeFilter: ['data-state'] });
      })()`.replace('__RUN__', newest.run_id).replace('__TASK__', taskId).replace('__STATE__', next));
      const sentAt = Date.now();
      await database.db.transaction(async (tx) => {
        await tx.execute(sql`update task_instances set state = ${next} where run_pk = ${newest.id} and task_id = ${taskId}`);
        await tx.execute(sql`select pg_notify('updraft_worker', '')`);
      });
      const seen = await page.waitForFunction('window.seenAt', undefined, { timeout: 30_000 });
      liveMs.push(Number(await seen.jsonValue()) - sentAt);
    }
    liveMs.sort((a, b) => a - b);

    return {
      bench: 'ui', tis,
      grid_api_p50_ms: round(percentile(apiMs, 50), 1), grid_api_p99_ms: round(percentile(apiMs, 99), 1),
      grid_paint_ms: round(percentile(paintMs, 50), 0), live_update_p50_ms: round(percentile(liveMs, 50), 1),
      grid_cells: cells, grid_cells_painted: shown, grid_paint_max_ms: round(paintMs[paintMs.length - 1], 0), live_update_p90_ms: round(percentile(liveMs, 90), 1),
    };
  } finally {
    await browser?.close();
    await server?.close();
    await database.close();
    await pg.drop();
  }
}
