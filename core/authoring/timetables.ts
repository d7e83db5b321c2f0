/**
 * Schedules that are not cron expressions, with Airflow's timetable semantics:
 * - a duration such as "30m" (DeltaDataIntervalTimetable): intervals of that length laid end to
 *   end from startDate, each due once its end has passed; catchup as for cron;
 * - "@once" (OnceTimetable): one run, its logical date and data interval at startDate;
 * - "@continuous" (ContinuousTimetable): a new run as soon as the last one ended, its data
 *   interval from the previous interval's end to now; needs maxActiveRuns: 1.
 * Pure, like schedule.ts, which hands these kinds over to this module.
 */
import { parseDuration } from './duration.ts';

export interface Interval {
  start: Date;
  end: Date;
}

export const ScheduleKind = { CRON: 'cron', DURATION: 'duration', ONCE: 'once', CONTINUOUS: 'continuous' } as const;
export type ScheduleKind = (typeof ScheduleKind)[keyof typeof ScheduleKind];

/** The smallest duration schedule: shorter ones would make a run per scheduler pass. */
const MIN_DURATION_MS = 1000;

export function scheduleKind(schedule: string): ScheduleKind {
  const s = schedule.trim();
  if (s === '@once') return ScheduleKind.ONCE;
  if (s === '@continuous') return ScheduleKind.CONTINUOUS;
  if (/^\d/.test(s) && parseDuration(s) !== null) return ScheduleKind.DURATION;
  return ScheduleKind.CRON;
}

/** Why a non-cron schedule is unusable, or null (also null for cron schedules: schedule.ts checks those). */
export function timetableError(schedule: string, maxActiveRuns?: number): string | null {
  const kind = scheduleKind(schedule);
  if (kind === ScheduleKind.DURATION && parseDuration(schedule)! < MIN_DURATION_MS) {
    return `schedule "${schedule}" is shorter than 1s; use a duration such as "30m" or "1h"`;
  }
  if (kind === ScheduleKind.CONTINUOUS && maxActiveRuns !== undefined && maxActiveRuns !== 1) {
    return `schedule "@continuous" starts a new run as soon as the last one ends, so it needs maxActiveRuns: 1 (got ${maxActiveRuns})`;
  }
  return null;
}

export interface TimetableQuery {
  schedule: string;
  startDate: Date;
  endDate: Date | null;
  catchup: boolean;
  lastIntervalEnd: Date | null;
  now: Date;
  limit: number;
  /** Queued or running runs of the DAG (only @continuous looks). */
  activeRuns?: number;
}

/** Intervals due now for a duration, @once or @continuous schedule, oldest first. */
export function timetableIntervals(q: TimetableQuery): Interval[] {
  const { startDate, endDate, now } = q;
  switch (scheduleKind(q.schedule)) {
    case ScheduleKind.ONCE:
      if (q.lastIntervalEnd !== null || now < startDate || (endDate !== null && startDate > endDate)) return [];
      return [{ start: startDate, end: startDate }];
    case ScheduleKind.CONTINUOUS: {
      if ((q.activeRuns ?? 0) > 0 || now < startDate || (endDate !== null && now > endDate)) return [];
      const start = q.lastIntervalEnd !== null && q.lastIntervalEnd > startDate ? q.lastIntervalEnd : startDate;
      return [{ start, end: now < start ? start : now }];
    }
    case ScheduleKind.DURATION:
      return durationIntervals(q, parseDuration(q.schedule)!);
    default:
      throw new Error(`"${q.schedule}" is a cron schedule`);
  }
}

function durationIntervals(q: TimetableQuery, every: number): Interval[] {
  const origin = q.startDate.getTime();
  const at = (k: number) => new Date(origin + k * every);
  // Index of the first interval not yet created: after the last end, snapped back onto the grid.
  const floor = q.lastIntervalEnd === null || q.lastIntervalEnd.getTime() < origin ? 0 : Math.floor((q.lastIntervalEnd.getTime() - origin) / every);
  // Intervals 0..lastDue have ended by now.
  const lastDue = Math.floor((q.now.getTime() - origin) / every) - 1;
  // The last interval starting at or before endDate.
  const lastAllowed = q.endDate === null ? Infinity : Math.floor((q.endDate.getTime() - origin) / every);
  const last = Math.min(lastDue, lastAllowed);
  if (last < floor) return [];
  if (!q.catchup) return [{ start: at(last), end: at(last + 1) }];
  const out: Interval[] = [];
  for (let k = floor; k <= last && out.length < q.limit; k++) out.push({ start: at(k), end: at(k + 1) });
  return out;
}

/** When a duration or @once schedule next has an interval due (for waking a scheduler), or null. */
export function nextDueAt(schedule: string, startDate: Date, now: Date): Date | null {
  const kind = scheduleKind(schedule);
  if (kind === ScheduleKind.ONCE) return now < startDate ? startDate : null;
  if (kind !== ScheduleKind.DURATION) return null;
  const every = parseDuration(schedule)!;
  const origin = startDate.getTime();
  const k = Math.max(1, Math.floor((now.getTime() - origin) / every) + 1);
  return new Date(origin + k * every);
}
