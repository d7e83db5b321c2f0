/** The /health endpoint standalone serves: Airflow's shape, from the jobs' heartbeats. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from 'node:http';
import { openDatabase, queries, JobType, type Database } from '../../core/index.ts';
import { serveHealth } from '../../cli/health.ts';

let database: Database;
let server: Server | null;
let port: number;

beforeAll(async () => {
  database = await openDatabase({ dataDir: 'memory://' });
  await database.migrate();
  server = await serveHealth(database, 0, 30_000);
  port = (server!.address() as { port: number }).port;
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await database.close();
});

const get = async (path: string) => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.json() as Record<string, { status: string; latest_heartbeat?: string | null }> };
};

describe('GET /health', () => {
  it('says unhealthy for a component with no running job, and healthy once it heartbeats', async () => {
    const before = await get('/health');
    expect(before.status).toBe(200);
    expect(before.body).toEqual({
      metadatabase: { status: 'healthy' },
      scheduler: { status: 'unhealthy', latest_heartbeat: null },
      triggerer: { status: 'unhealthy', latest_heartbeat: null },
      worker: { status: 'unhealthy', latest_heartbeat: null },
    });
    await queries.jobs.registerJob(database.db, JobType.TRIGGERER);
    const after = await get('/health');
    expect(after.body.triggerer.status).toBe('healthy');
    expect(Date.parse(after.body.triggerer.latest_heartbeat!)).toBeGreaterThan(Date.now() - 60_000);
    expect(after.body.scheduler.status).toBe('unhealthy');
  });

  it('answers 404 with a JSON error elsewhere', async () => {
    expect(await get('/nope')).toEqual({ status: 404, body: { error: 'only GET /health is served here' } });
  });
});
