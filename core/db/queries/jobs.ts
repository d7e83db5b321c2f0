/** Heartbeat rows for scheduler, worker and triggerer processes. */
import { eq, sql } from 'drizzle-orm';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { jobs } from '../schema.ts';
import type { Executor } from '../client.ts';
import type { JobType } from '../../model/states.ts';

export async function registerJob(ex: Executor, jobType: JobType): Promise<string> {
  const id = `${jobType}-${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  // The database's clock, as every heartbeat and liveness check uses: hosts' clocks differ.
  await ex.insert(jobs).values({ id, jobType, hostname: hostname(), pid: process.pid, state: 'running', startDate: sql`now()`, latestHeartbeat: sql`now()` });
  return id;
}

export async function heartbeatJob(ex: Executor, id: string, info?: Record<string, unknown>): Promise<void> {
  await ex.update(jobs).set({ latestHeartbeat: sql`now()`, ...(info ? { info } : {}) }).where(eq(jobs.id, id));
}

export async function endJob(ex: Executor, id: string): Promise<void> {
  await ex.update(jobs).set({ state: 'finished', endDate: sql`now()` }).where(eq(jobs.id, id));
}

export interface JobHealth {
  jobType: string;
  latestHeartbeat: Date;
  /** Seconds since that heartbeat, by the database's clock. */
  ageSeconds: number;
}

/** The freshest heartbeat of each job type among running jobs. */
export async function latestHeartbeats(ex: Executor): Promise<JobHealth[]> {
  const rows = await ex.select({
    jobType: jobs.jobType,
    latestHeartbeat: sql<Date>`max(${jobs.latestHeartbeat})`.mapWith(jobs.latestHeartbeat),
    ageSeconds: sql<number>`extract(epoch from now() - max(${jobs.latestHeartbeat}))::float8`.mapWith(Number),
  }).from(jobs).where(eq(jobs.state, 'running')).groupBy(jobs.jobType);
  return rows;
}
