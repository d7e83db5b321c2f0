/** The /health endpoint standalone's api-server serves without a login: Airflow's shape, from the jobs' heartbeats. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, queries, JobType, type Database } from '../../core/index.ts';
import { createApiServer, type ApiServer } from '../../api/index.ts';
import { healthReport } from '../../cli/health.ts';

let database: Database;
let server: ApiServer;

beforeAll(async () => {
  database = await openDatabase({ dataDir: 'memory://' });
  await database.migrate();
  server = await createApiServer({
    database, dagBag: null, store: null, sessionSecret: 'x', port: 0, health: () => healthReport(database, 30_000),
    config: { auth: 'password', host: '127.0.0.1', port: 0, users: [], tokens: [], sessionTtlMs: 60_000 },
  });
});
afterAll(async () => {
  await server?.close();
  await database.close();
});

const get = async (path: string) => {
  const res = await fetch(`${server.url}${path}`);
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

  it('is the only thing answered without a login', async () => {
    const res = await get('/api/v1/dags');
    expect(res.status).toBe(401);
    expect(res.body.error).toMatchObject({ status: 401, code: 'unauthorized' });
  });
});
