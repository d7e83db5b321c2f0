import { describe, expect, it } from 'vitest';
import {
  intervalsToRun,
  nextFireAfter,
  presetToCron,
  validateSchedule,
  type DataInterval,
} from '../../core/authoring/schedule.ts';

const d = (iso: string) => new Date(iso);
const iso = (intervals: DataInterval[]) => intervals.map((i) => [i.start.toISOString(), i.end.toISOString()]);
const HOUR = 3_600_000;

function utcOffset(tz: string, at: Date): string {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: tz, timeZoneName: 'longOffset' }).formatToParts(at);
  return parts.find((p) => p.type === 'timeZoneName')!.value;
}

function localHour(tz: string, at: Date): number {
  return Number(new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', hourCycle: 'h23' }).format(at));
}

// Ordered, gap-free, duplicate-free: the invariants every interval list must keep.
function expectContiguous(intervals: DataInterval[]): void {
  for (const [i, interval] of intervals.entries()) {
    expect(interval.start.getTime()).toBeLessThan(interval.end.getTime());
    if (i > 0) expect(interval.start.getTime()).toBe(intervals[i - 1]!.end.getTime());
  }
  expect(new Set(intervals.map((i) => i.start.getTime())).size).toBe(intervals.length);
}

const daily = {
  schedule: '@daily',
  timezone: 'UTC',
  startDate: d('2024-01-01T00:00:00Z'),
  endDate: null,
  catchup: true,
  lastIntervalEnd: null,
  now: d('2024-01-05T12:00:00Z'),
};

describe('presetToCron', () => {
  it.each([
    ['@hourly', '0 * * * *'],
    ['@daily', '0 0 * * *'],
    ['@weekly', '0 0 * * 0'],
    ['@monthly', '0 0 1 * *'],
    ['@yearly', '0 0 1 1 *'],
  ])('%s -> %s', (preset, cron) => {
    expect(presetToCron(preset)).toBe(cron);
  });

  it('passes other strings through', () => {
    expect(presetToCron(' */5 * * * * ')).toBe('*/5 * * * *');
    expect(presetToCron('@minutely')).toBe('@minutely');
  });
});

describe('validateSchedule', () => {
  it.each([null, '@hourly', '@daily', '@weekly', '@monthly', '@yearly', '0 0 * * *', '*/15 9-17 * * MON-FRI', '30 0 12 * * *'])(
    'accepts %s',
    (schedule) => {
      expect(validateSchedule(schedule, 'UTC')).toBeNull();
    },
  );

  it('explains an out-of-range field', () => {
    expect(validateSchedule('61 * * * *', 'UTC')).toBe(
      'invalid cron expression "61 * * * *": minute value 61 is out of range 0-59; ' +
        'use five fields "min hour day month weekday" or a preset like @daily',
    );
    expect(validateSchedule('0 25 * * *', 'UTC')).toContain('hour value 25 is out of range 0-23');
    expect(validateSchedule('0 0 * 1-13 *', 'UTC')).toContain('month value 13 is out of range 1-12');
    expect(validateSchedule('60 0 0 * * *', 'UTC')).toContain('second value 60 is out of range 0-59');
  });

  it('explains a wrong field count', () => {
    expect(validateSchedule('* * * *', 'UTC')).toContain('expected 5 or 6 fields, got 4');
    expect(validateSchedule('* * * * * * *', 'UTC')).toContain('expected 5 or 6 fields, got 7');
    expect(validateSchedule('', 'UTC')).toContain('expected 5 or 6 fields, got 0');
  });

  it('rejects what only one of the two cron libraries accepts', () => {
    // cron-parser reads "5/15" as "from 5 every 15"; node-cron refuses it.
    expect(validateSchedule('5/15 * * * *', 'UTC')).toContain('minute field "5/15" is not valid');
  });

  it('rejects a day that never occurs', () => {
    expect(validateSchedule('0 0 30 2 *', 'UTC')).toContain('day-of-month 30 never occurs');
  });

  it('rejects unknown presets', () => {
    expect(validateSchedule('@minutely', 'UTC')).toContain('unknown schedule preset "@minutely"');
    expect(validateSchedule('@fortnightly', 'UTC')).toContain('@hourly, @daily, @weekly, @monthly, @yearly, @once, @continuous');
    // @once and @continuous are timetables now (tests/core/timetables.test.ts).
    expect(validateSchedule('@once', 'UTC')).toBeNull();
  });

  it('rejects an unknown timezone, even for manual-only DAGs', () => {
    const message = 'invalid timezone "Mars/Olympus": use an IANA zone name such as "UTC" or "Europe/Berlin"';
    expect(validateSchedule('@daily', 'Mars/Olympus')).toBe(message);
    expect(validateSchedule(null, 'Mars/Olympus')).toBe(message);
    expect(validateSchedule('@daily', 'America/New_York')).toBeNull();
  });
});

describe('nextFireAfter', () => {
  it('is strictly after the given instant', () => {
    expect(nextFireAfter('@daily', 'UTC', d('2024-01-01T00:00:00Z'))).toEqual(d('2024-01-02T00:00:00Z'));
    expect(nextFireAfter('@daily', 'UTC', d('2023-12-31T23:59:59.999Z'))).toEqual(d('2024-01-01T00:00:00Z'));
    expect(nextFireAfter('* * * * * *', 'UTC', d('2024-01-01T00:00:00.500Z'))).toEqual(d('2024-01-01T00:00:01Z'));
  });

  it('reads the cron in the given timezone', () => {
    expect(nextFireAfter('0 9 * * *', 'Europe/Berlin', d('2024-01-15T00:00:00Z'))).toEqual(d('2024-01-15T08:00:00Z'));
    expect(nextFireAfter('0 9 * * *', 'Europe/Berlin', d('2024-07-15T00:00:00Z'))).toEqual(d('2024-07-15T07:00:00Z'));
    expect(nextFireAfter('@monthly', 'Asia/Tokyo', d('2024-01-15T00:00:00Z'))).toEqual(d('2024-01-31T15:00:00Z'));
  });

  it('gives the same answer wherever a DST change is entered', () => {
    // 02:30 does not exist on 2024-03-10 in New York; the fire moves to 03:30 EDT
    // (07:30Z). Asking from inside the skipped hour must still find it.
    for (const after of ['2024-03-10T06:59:00Z', '2024-03-10T07:00:00Z', '2024-03-10T07:29:00Z']) {
      expect(nextFireAfter('30 2 * * *', 'America/New_York', d(after))).toEqual(d('2024-03-10T07:30:00Z'));
    }
    // 01:30 happens twice on 2024-11-03; the schedule fires once, on the first.
    expect(nextFireAfter('30 1 * * *', 'America/New_York', d('2024-11-03T05:00:00Z'))).toEqual(
      d('2024-11-03T05:30:00Z'),
    );
    expect(nextFireAfter('30 1 * * *', 'America/New_York', d('2024-11-03T06:00:00Z'))).toEqual(
      d('2024-11-04T06:30:00Z'),
    );
  });

  it('throws on an unknown preset', () => {
    expect(() => nextFireAfter('@minutely', 'UTC', d('2024-01-01T00:00:00Z'))).toThrow(/unknown schedule preset/);
  });
});

describe('intervalsToRun', () => {
  it('with catchup returns every due interval, oldest first', () => {
    expect(iso(intervalsToRun(daily))).toEqual([
      ['2024-01-01T00:00:00.000Z', '2024-01-02T00:00:00.000Z'],
      ['2024-01-02T00:00:00.000Z', '2024-01-03T00:00:00.000Z'],
      ['2024-01-03T00:00:00.000Z', '2024-01-04T00:00:00.000Z'],
      ['2024-01-04T00:00:00.000Z', '2024-01-05T00:00:00.000Z'],
    ]);
  });

  it('counts an interval as due once its end has been reached', () => {
    expect(intervalsToRun({ ...daily, now: d('2024-01-04T23:59:59.999Z') })).toHaveLength(3);
    expect(intervalsToRun({ ...daily, now: d('2024-01-05T00:00:00Z') })).toHaveLength(4);
    expect(intervalsToRun({ ...daily, now: d('2024-01-01T12:00:00Z') })).toEqual([]);
  });

  it('aligns the first interval to the schedule at or after startDate', () => {
    const out = intervalsToRun({ ...daily, startDate: d('2024-01-01T06:00:00Z') });
    expect(out[0]!.start).toEqual(d('2024-01-02T00:00:00Z'));
    expect(out).toHaveLength(3);
  });

  it('continues from lastIntervalEnd', () => {
    expect(iso(intervalsToRun({ ...daily, lastIntervalEnd: d('2024-01-03T00:00:00Z') }))).toEqual([
      ['2024-01-03T00:00:00.000Z', '2024-01-04T00:00:00.000Z'],
      ['2024-01-04T00:00:00.000Z', '2024-01-05T00:00:00.000Z'],
    ]);
    expect(intervalsToRun({ ...daily, lastIntervalEnd: d('2024-01-05T00:00:00Z') })).toEqual([]);
    // An end before startDate (startDate moved forward) does not pull runs back.
    expect(intervalsToRun({ ...daily, lastIntervalEnd: d('2023-06-01T00:00:00Z') })).toHaveLength(4);
  });

  it('snaps an off-grid lastIntervalEnd back onto the schedule, as Airflow does', () => {
    const out = intervalsToRun({ ...daily, lastIntervalEnd: d('2024-01-03T06:00:00Z') });
    expect(out[0]!.start).toEqual(d('2024-01-03T00:00:00Z'));
    expect(out).toHaveLength(2);
  });

  it('creates a backlog in chunks with limit', () => {
    const all = intervalsToRun({ ...daily, now: d('2024-02-01T00:00:00Z') });
    expect(all).toHaveLength(31);
    const chunks: DataInterval[] = [];
    let lastIntervalEnd: Date | null = null;
    for (;;) {
      const chunk = intervalsToRun({ ...daily, now: d('2024-02-01T00:00:00Z'), lastIntervalEnd, limit: 7 });
      if (chunk.length === 0) break;
      expect(chunk.length).toBeLessThanOrEqual(7);
      chunks.push(...chunk);
      lastIntervalEnd = chunk[chunk.length - 1]!.end;
    }
    expect(iso(chunks)).toEqual(iso(all));
    expect(intervalsToRun({ ...daily, limit: 0 })).toEqual([]);
    expect(() => intervalsToRun({ ...daily, limit: -1 })).toThrow(RangeError);
    expect(() => intervalsToRun({ ...daily, limit: 1.5 })).toThrow(RangeError);
  });

  it('creates no interval starting after endDate', () => {
    expect(intervalsToRun({ ...daily, endDate: d('2024-01-03T00:00:00Z') }).map((i) => i.start)).toEqual([
      d('2024-01-01T00:00:00Z'),
      d('2024-01-02T00:00:00Z'),
      d('2024-01-03T00:00:00Z'),
    ]);
    expect(intervalsToRun({ ...daily, endDate: d('2024-01-02T12:00:00Z') })).toHaveLength(2);
    expect(intervalsToRun({ ...daily, endDate: d('2023-12-01T00:00:00Z') })).toEqual([]);
  });

  it('without catchup returns only the latest due interval', () => {
    const noCatchup = { ...daily, catchup: false };
    expect(iso(intervalsToRun(noCatchup))).toEqual([['2024-01-04T00:00:00.000Z', '2024-01-05T00:00:00.000Z']]);
    expect(iso(intervalsToRun({ ...noCatchup, lastIntervalEnd: d('2024-01-02T00:00:00Z') }))).toEqual([
      ['2024-01-04T00:00:00.000Z', '2024-01-05T00:00:00.000Z'],
    ]);
    expect(intervalsToRun({ ...noCatchup, lastIntervalEnd: d('2024-01-05T00:00:00Z') })).toEqual([]);
    // The first interval after a recent startDate is not due yet.
    expect(intervalsToRun({ ...noCatchup, startDate: d('2024-01-05T00:00:00Z') })).toEqual([]);
    expect(intervalsToRun({ ...noCatchup, startDate: d('2024-01-04T00:00:00Z') })).toHaveLength(1);
  });

  it('without catchup keeps the last interval that starts by endDate', () => {
    const out = intervalsToRun({ ...daily, catchup: false, endDate: d('2024-01-02T12:00:00Z') });
    expect(iso(out)).toEqual([['2024-01-02T00:00:00.000Z', '2024-01-03T00:00:00.000Z']]);
  });

  it('without catchup skips a long backlog without walking it', () => {
    const out = intervalsToRun({
      ...daily,
      schedule: '* * * * *',
      catchup: false,
      startDate: d('2000-01-01T00:00:00Z'),
      now: d('2024-01-05T12:00:30Z'),
    });
    expect(iso(out)).toEqual([['2024-01-05T11:59:00.000Z', '2024-01-05T12:00:00.000Z']]);
  });

  describe('across DST changes', () => {
    const ny = { ...daily, schedule: '30 2 * * *', timezone: 'America/New_York' };

    it('spring forward: the missing 02:30 runs at 03:30 EDT and that day is 23 h', () => {
      const out = intervalsToRun({ ...ny, startDate: d('2024-03-08T05:00:00Z'), now: d('2024-03-12T12:00:00Z') });
      expectContiguous(out);
      expect(iso(out)).toEqual([
        ['2024-03-08T07:30:00.000Z', '2024-03-09T07:30:00.000Z'],
        ['2024-03-09T07:30:00.000Z', '2024-03-10T07:30:00.000Z'],
        ['2024-03-10T07:30:00.000Z', '2024-03-11T06:30:00.000Z'],
        ['2024-03-11T06:30:00.000Z', '2024-03-12T06:30:00.000Z'],
      ]);
      expect(out.map((i) => (i.end.getTime() - i.start.getTime()) / HOUR)).toEqual([24, 24, 23, 24]);
      expect(out.map((i) => utcOffset('America/New_York', i.start))).toEqual([
        'GMT-05:00',
        'GMT-05:00',
        'GMT-04:00',
        'GMT-04:00',
      ]);
      expect(out.map((i) => localHour('America/New_York', i.start))).toEqual([2, 2, 3, 2]);
    });

    it('fall back: 02:30 is unambiguous and that day is 25 h', () => {
      const out = intervalsToRun({ ...ny, startDate: d('2024-11-01T04:00:00Z'), now: d('2024-11-05T12:00:00Z') });
      expectContiguous(out);
      expect(out.map((i) => (i.end.getTime() - i.start.getTime()) / HOUR)).toEqual([24, 25, 24, 24]);
      expect(out.map((i) => utcOffset('America/New_York', i.start))).toEqual([
        'GMT-04:00',
        'GMT-04:00',
        'GMT-05:00',
        'GMT-05:00',
      ]);
      expect(out.map((i) => localHour('America/New_York', i.start))).toEqual([2, 2, 2, 2]);
    });

    it('gives the same intervals in one pass, in chunks of one, or as the latest each time', () => {
      const opts = { ...ny, startDate: d('2024-03-01T00:00:00Z'), now: d('2024-11-10T00:00:00Z') };
      const all = intervalsToRun(opts);
      expectContiguous(all);
      const oneByOne: DataInterval[] = [];
      let lastIntervalEnd: Date | null = null;
      for (;;) {
        const [next] = intervalsToRun({ ...opts, lastIntervalEnd, limit: 1 });
        if (next === undefined) break;
        oneByOne.push(next);
        lastIntervalEnd = next.end;
      }
      expect(iso(oneByOne)).toEqual(iso(all));
      // Without catchup, asking at (just after) each end yields that interval.
      for (const interval of all.filter((i) => i.start.getUTCMonth() === 2 || i.start.getUTCMonth() === 10)) {
        const latest = intervalsToRun({ ...opts, catchup: false, now: new Date(interval.end.getTime() + 60_000) });
        expect(iso(latest)).toEqual(iso([interval]));
      }
    });

    it('without catchup picks the right interval from inside the skipped hour', () => {
      const at = (now: string) => iso(intervalsToRun({ ...ny, catchup: false, now: d(now) }));
      expect(at('2024-03-10T07:10:00Z')).toEqual([['2024-03-08T07:30:00.000Z', '2024-03-09T07:30:00.000Z']]);
      expect(at('2024-03-10T08:00:00Z')).toEqual([['2024-03-09T07:30:00.000Z', '2024-03-10T07:30:00.000Z']]);
    });

    it('hourly in Berlin: the fall-back day has 25 one-hour intervals, local 02:00 twice', () => {
      // cron-parser fires on both 02:00s (CEST, then CET): every real hour of
      // the day gets exactly one interval, so none is lost or run twice.
      const out = intervalsToRun({
        ...daily,
        schedule: '@hourly',
        timezone: 'Europe/Berlin',
        startDate: d('2024-10-26T22:00:00Z'), // local midnight, CEST
        now: d('2024-10-27T23:00:00Z'), // next local midnight, CET
      });
      expectContiguous(out);
      expect(out).toHaveLength(25);
      expect(out.every((i) => i.end.getTime() - i.start.getTime() === HOUR)).toBe(true);
      const hours = out.map((i) => localHour('Europe/Berlin', i.start));
      expect(hours.slice(0, 5)).toEqual([0, 1, 2, 2, 3]);
      expect(utcOffset('Europe/Berlin', out[2]!.start)).toBe('GMT+02:00');
      expect(utcOffset('Europe/Berlin', out[3]!.start)).toBe('GMT+01:00');
    });

    it('hourly in Berlin: the spring-forward day has 23 intervals and no local 02:00', () => {
      const out = intervalsToRun({
        ...daily,
        schedule: '@hourly',
        timezone: 'Europe/Berlin',
        startDate: d('2024-03-30T23:00:00Z'),
        now: d('2024-03-31T22:00:00Z'),
      });
      expectContiguous(out);
      expect(out).toHaveLength(23);
      expect(out.map((i) => localHour('Europe/Berlin', i.start))).not.toContain(2);
    });
  });
});
