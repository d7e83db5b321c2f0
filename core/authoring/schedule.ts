/**
 * Cron schedules and the data intervals they cut time into, with Apache
 * Airflow's cron-timetable semantics: a schedule is a cron expression (five
 * fields, or six with seconds), one of five presets, or null for manual runs
 * only; consecutive fire times in the DAG's IANA timezone bound the intervals,
 * and an interval becomes due once its end has passed. This module validates
 * schedules, answers "next fire after X", and decides which intervals a
 * scheduler should create next. It is pure apart from reading the tz database.
 * Durations ("30m"), "@once" and "@continuous" are handed to timetables.ts.
 */
import { CronExpressionParser } from 'cron-parser';
import { validate as nodeCronValidate, validateDetailed } from 'node-cron';
import { ScheduleKind, scheduleKind, timetableError, timetableIntervals } from './timetables.ts';

export interface DataInterval {
  start: Date;
  end: Date;
}

const PRESETS: Readonly<Record<string, string>> = {
  '@hourly': '0 * * * *',
  '@daily': '0 0 * * *',
  '@weekly': '0 0 * * 0',
  '@monthly': '0 0 1 * *',
  '@yearly': '0 0 1 1 *',
};

const HINT = 'use five fields "min hour day month weekday" or a preset like @daily';

// Labels and ranges for turning a field error into a sentence a DAG author can act on.
const FIELDS: Readonly<Record<string, readonly [label: string, min: number, max: number]>> = {
  second: ['second', 0, 59],
  minute: ['minute', 0, 59],
  hour: ['hour', 0, 23],
  dayOfMonth: ['day-of-month', 1, 31],
  month: ['month', 1, 12],
  dayOfWeek: ['weekday', 0, 7],
};

/** The cron expression behind a preset; anything else comes back trimmed but unchanged. */
export function presetToCron(s: string): string {
  const trimmed = s.trim();
  return PRESETS[trimmed] ?? trimmed;
}

/**
 * A human-readable reason why `schedule` or `timezone` is unusable, or null.
 * The expression must satisfy both node-cron and cron-parser, so anything
 * accepted here can be handed to either.
 */
export function validateSchedule(schedule: string | null, timezone: string): string | null {
  const tzError = timezoneError(timezone);
  if (tzError !== null) return tzError;
  if (schedule === null) return null;

  const trimmed = schedule.trim();
  if (scheduleKind(trimmed) !== ScheduleKind.CRON) return timetableError(trimmed);
  if (trimmed.startsWith('@') && !(trimmed in PRESETS)) {
    return (
      `unknown schedule preset "${schedule}": use one of ${[...Object.keys(PRESETS), '@once', '@continuous'].join(', ')}, ` +
      'a cron expression, a duration such as "30m", or null for manual runs only'
    );
  }
  const cron = presetToCron(trimmed);
  const fieldCount = cron.split(/\s+/).filter(Boolean).length;
  if (fieldCount !== 5 && fieldCount !== 6) {
    return invalid(schedule, `expected 5 or 6 fields, got ${fieldCount}`);
  }
  if (!nodeCronValidate(cron)) return invalid(schedule, describeFieldError(cron));
  try {
    // Iterating once also catches expressions that parse but can never fire.
    CronExpressionParser.parse(cron, { tz: timezone, currentDate: new Date(Date.UTC(2000, 0, 1)) }).next();
  } catch (err) {
    return invalid(schedule, err instanceof Error ? err.message : String(err));
  }
  return null;
}

/** The first fire time strictly after `after`. Throws on an invalid schedule. */
export function nextFireAfter(schedule: string, timezone: string, after: Date): Date {
  return firesAfter(cronOf(schedule), timezone, after)();
}

/**
 * Data intervals a scheduler should create now, oldest first. `lastIntervalEnd`
 * is the end of the newest interval already created. With catchup every due
 * interval is returned (at most `limit`, so a long backlog is created in
 * chunks); without it only the latest due one.
 */
export function intervalsToRun(opts: {
  schedule: string;
  timezone: string;
  startDate: Date;
  endDate: Date | null;
  catchup: boolean;
  lastIntervalEnd: Date | null;
  now: Date;
  limit?: number;
  /** Queued or running runs of the DAG: "@continuous" waits for none. */
  activeRuns?: number;
}): DataInterval[] {
  const { timezone: tz, endDate, now } = opts;
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  if (limit !== Number.POSITIVE_INFINITY && (!Number.isInteger(limit) || limit < 0)) {
    throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
  }
  if (limit === 0) return [];
  if (scheduleKind(opts.schedule) !== ScheduleKind.CRON) return timetableIntervals({ ...opts, limit });

  const cron = cronOf(opts.schedule);
  // Like Airflow, the first interval starts on the grid, at or after startDate.
  const first = firesAfter(cron, tz, new Date(opts.startDate.getTime() - 1))();
  let floor = first;
  const lastEnd = opts.lastIntervalEnd;
  if (lastEnd !== null && lastEnd >= first) {
    const onGrid = firesAfter(cron, tz, new Date(lastEnd.getTime() - 1))().getTime() === lastEnd.getTime();
    // Off the grid only after a schedule change; like Airflow, snap back onto
    // it, re-covering a little data rather than leaving a gap.
    floor = onGrid ? lastEnd : (lastFiresAtOrBefore(cron, tz, lastEnd, first, 1)[0] ?? first);
  }

  if (!opts.catchup) {
    const [start, end] = lastFiresAtOrBefore(cron, tz, now, floor, 2);
    if (start === undefined || end === undefined) return [];
    if (endDate === null || start <= endDate) return [{ start, end }];
    // Airflow would create nothing once the latest interval starts after
    // endDate; taking the last one that still fits keeps a scheduler outage
    // across endDate from silently losing the final run.
    const [last] = lastFiresAtOrBefore(cron, tz, endDate, floor, 1);
    return last === undefined ? [] : [{ start: last, end: firesAfter(cron, tz, last)() }];
  }

  const out: DataInterval[] = [];
  const next = firesAfter(cron, tz, floor);
  for (let start = floor; out.length < limit && (endDate === null || start <= endDate); ) {
    const end = next();
    if (end > now) break;
    out.push({ start, end });
    start = end;
  }
  return out;
}

function cronOf(schedule: string): string {
  const cron = presetToCron(schedule);
  if (cron.startsWith('@')) throw new Error(`unknown schedule preset "${schedule}"`);
  return cron;
}

// cron-parser's next() depends on where it starts when that point sits just
// after a UTC-offset change: started inside New York's skipped 02:00-03:00
// hour it misses the 02:30 fire that it otherwise shifts to 03:30, and started
// inside the repeated 01:00-02:00 hour it fires 01:30 a second time. Starting a
// few hours back whenever the offset changed recently makes the sequence the
// same wherever it is entered. Elsewhere the start point is the query itself,
// so frequent schedules stay cheap.
const DST_LOOKBACK_MS = 3 * 3_600_000;

/** Successive fire times strictly after `after`, one per call. */
function firesAfter(cron: string, tz: string, after: Date): () => Date {
  const lookback = new Date(after.getTime() - DST_LOOKBACK_MS);
  const start = utcOffset(tz, lookback) === utcOffset(tz, after) ? after : lookback;
  const it = CronExpressionParser.parse(cron, { tz, currentDate: start });
  let last = after.getTime();
  return () => {
    for (;;) {
      const fire = it.next().toDate();
      if (fire.getTime() > last) {
        last = fire.getTime();
        return fire;
      }
    }
  };
}

/**
 * Up to `n` latest fire times within [floor, t], oldest first. `floor` must be
 * a fire time. cron-parser's prev() skips or repeats fires across DST changes,
 * so this walks forward from ever earlier anchors instead.
 */
function lastFiresAtOrBefore(cron: string, tz: string, t: Date, floor: Date, n: number): Date[] {
  if (t < floor) return [];
  for (let windowMs = 60_000; ; windowMs *= 2) {
    const anchor = Math.max(t.getTime() - windowMs, floor.getTime() - 1);
    const next = firesAfter(cron, tz, new Date(anchor));
    const found: Date[] = [];
    for (let fire = next(); fire <= t; fire = next()) {
      found.push(fire);
      if (found.length > n) found.shift();
    }
    if (found.length === n || anchor < floor.getTime()) return found;
  }
}

const offsetFormats = new Map<string, Intl.DateTimeFormat>();

function utcOffset(tz: string, at: Date): string {
  let format = offsetFormats.get(tz);
  if (format === undefined) {
    format = new Intl.DateTimeFormat('en-US', { timeZone: tz, timeZoneName: 'longOffset' });
    offsetFormats.set(tz, format);
  }
  return format.formatToParts(at).find((p) => p.type === 'timeZoneName')?.value ?? '';
}

function timezoneError(timezone: string): string | null {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return null;
  } catch {
    return `invalid timezone "${timezone}": use an IANA zone name such as "UTC" or "Europe/Berlin"`;
  }
}

function invalid(schedule: string, reason: string): string {
  return `invalid cron expression "${schedule}": ${reason}; ${HINT}`;
}

function describeFieldError(cron: string): string {
  const error = validateDetailed(cron).errors[0];
  const field = error === undefined ? undefined : FIELDS[error.field];
  if (error === undefined || field === undefined) return 'not a valid cron expression';
  const [label, min, max] = field;
  const value = error.value ?? '';
  // Steps are counts, not positions, so only the part before "/" is range-checked.
  const outOfRange = (value.split('/')[0]?.match(/\d+/g) ?? []).map(Number).find((v) => v < min || v > max);
  if (outOfRange !== undefined) return `${label} value ${outOfRange} is out of range ${min}-${max}`;
  if (/impossible/i.test(error.message)) return `${label} ${value} never occurs in the selected months`;
  return `${label} field "${value}" is not valid`;
}
