/**
 * The report GET /health answers with (the api-server serves it without a login), in the shape
 * of Airflow's `/health`: the metadata database, and the scheduler, triggerer and worker with
 * their latest heartbeats. A component is healthy when it heartbeated within the zombie threshold.
 */
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
