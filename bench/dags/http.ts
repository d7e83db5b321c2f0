/**
 * Benchmark DAGs for the HTTP bench; the `bench_http` connection points at bench/http-server.ts.
 * - bench_http_async: ONE async task makes `count` GETs through HttpHook, `inFlight` at a time.
 * - bench_http_mapped: `count` mapped TIs, each deferring one GET to an HttpTrigger.
 * - bench_http_pages: a deferrable HttpOperator walking `pages` Link-header pages in one trigger run.
 * - bench_http_redefer: the same pages with one deferral per page (Airflow's way); each resume
 *   reads the Link header and defers again, carrying only a page count (Airflow carries every
 *   earlier response).
 */
import { z } from 'zod';
import { dag, task, BaseOperator, type Context, type TaskOptions } from 'updraft';
import { HttpHook, HttpOperator, HttpTrigger, deferredRequest, nextLink, type HttpEvent } from 'updraft/providers/http';

const CONN = 'bench_http';

const manyGets = task('many_gets', async (_: void, ctx) => {
  const http = await HttpHook.create(ctx, CONN);
  const count = Number(ctx.params.count);
  let next = 0;
  let ok = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      const res = await http.run<{ i: number }>('/item', { query: { i }, signal: ctx.signal });
      if (res.body.i === i) ok++;
    }
  };
  await Promise.all(Array.from({ length: Number(ctx.params.inFlight) }, lane));
  if (ok !== count) throw new Error(`only ${ok} of ${count} answers matched`);
  return ok;
});

export const asyncGets = dag({
  dagId: 'bench_http_async', schedule: null,
  params: z.object({ count: z.number().int().positive().default(10_000), inFlight: z.number().int().positive().default(200) }),
}, () => { manyGets(); });

const makeIds = task('make_ids', async (_: void, ctx) => Array.from({ length: Number(ctx.params.count) }, (_, i) => i));
const fetchOne = task('fetch_one', async ({ i }: { i: number }, ctx) => (deferredRequest(ctx, '/item', { connId: CONN, query: { i } }).body as { i: number }).i);

export const mapped = dag({
  dagId: 'bench_http_mapped', schedule: null, maxActiveTasks: 10_000,
  params: z.object({ count: z.number().int().positive().default(2_000) }),
}, () => { fetchOne.expand({ i: makeIds() }); });

export const pages = dag({
  dagId: 'bench_http_pages', schedule: null,
  params: z.object({ pages: z.number().int().positive().default(500) }),
}, () => {
  new HttpOperator({
    taskId: 'all_pages', connId: CONN, endpoint: '/pages', query: { page: '1', of: '{{ params.pages }}' }, deferrable: true,
    paginate: { pagination: { style: 'link' }, maxPages: 10_000 },
    responseFilter: (all) => (all as unknown[]).length,
  });
});

class RedeferPagesOperator extends BaseOperator {
  constructor(options: TaskOptions) { super(options); }

  async execute(ctx: Context): Promise<unknown> {
    return this.defer({ trigger: new HttpTrigger({ connId: CONN, endpoint: `/pages?page=1&of=${Number(ctx.params.pages)}` }), method: 'nextPage', kwargs: { fetched: 0 } });
  }

  async nextPage(_ctx: Context, event: HttpEvent, kwargs: { fetched: number }): Promise<unknown> {
    const fetched = kwargs.fetched + 1;
    const next = nextLink(event.headers.link, event.url);
    if (!next) return fetched;
    return this.defer({ trigger: new HttpTrigger({ connId: CONN, endpoint: next }), method: 'nextPage', kwargs: { fetched } });
  }
}

export const redefer = dag({
  dagId: 'bench_http_redefer', schedule: null,
  params: z.object({ pages: z.number().int().positive().default(500) }),
}, () => { new RedeferPagesOperator({ taskId: 'page_by_page' }); });
