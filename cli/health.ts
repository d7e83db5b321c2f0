/**
 * The health endpoint `standalone` serves, in the shape of Airflow's `/health`: the metadata
 * database, and the scheduler, triggerer and worker with their latest heartbeats. A component
 * is healthy when it heartbeated within the zombie threshold. Bound to 127.0.0.1 only.
 */
import { createServer, type Server } from 'node:http';
import { queries, type Database } from '../core/index.ts';

export async function healthReport(database: Database, thresholdMs: number): Promise<Record<string, unknown>> {
  let beats: queries.jobs.JobHealth[];
  try {
    beats = await queries.jobs.latestHeartbeats(database.db);
  } catch {
    return { metadatabase: { status: 'unhealthy' } };
  }
  const report: Record<string, unknown> = { metadatabase: { status: 'healthy' } };
  for (const type of ['scheduler', 'triggerer', 'worker']) {
    const beat = beats.find((b) => b.jobType === type);
    report[type] = {
      status: beat && beat.ageSeconds * 1000 <= thresholdMs ? 'healthy' : 'unhealthy',
      latest_heartbeat: beat?.latestHeartbeat.toISOString() ?? null,
    };
  }
  return report;
}

/** Serve GET /health on 127.0.0.1:port; resolves to null (with a warning) when the port is taken. */
export async function serveHealth(database: Database, port: number, thresholdMs: number): Promise<Server | null> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || new URL(req.url ?? '/', 'http://x').pathname !== '/health') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'only GET /health is served here' }));
      return;
    }
    healthReport(database, thresholdMs).then(
      (report) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(report)),
      (err) => res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(err) })),
    );
  });
  try {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
    return server;
  } catch (err) {
    process.stderr.write(`updraft standalone: the health endpoint could not listen on 127.0.0.1:${port} (${(err as Error).message}); set UPDRAFT_HEALTH_PORT to a free port\n`);
    return null;
  }
}
