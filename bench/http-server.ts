/**
 * The HTTP bench's server, in its own process: every request is answered after 20 ms (a timer,
 * so the server's loop stays free). `/item` returns `{ i }`; `/pages?page=N&of=M` returns one
 * page with a Link header to the next until M. Prints `{"port":…}` once listening.
 */
import { createServer } from 'node:http';

const DELAY_MS = Number(process.env.BENCH_HTTP_DELAY_MS ?? 20);

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  setTimeout(() => {
    if (url.pathname === '/item') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ i: Number(url.searchParams.get('i') ?? 0) }));
    } else if (url.pathname === '/pages') {
      const page = Number(url.searchParams.get('page') ?? 1);
      const of = Number(url.searchParams.get('of') ?? 1);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (page < of) headers.link = `</pages?page=${page + 1}&of=${of}>; rel="next"`;
      res.writeHead(200, headers).end(JSON.stringify({ page, items: [page] }));
    } else {
      res.writeHead(404).end();
    }
  }, DELAY_MS);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
});
process.on('SIGTERM', () => { server.closeAllConnections(); server.close(() => process.exit(0)); });
