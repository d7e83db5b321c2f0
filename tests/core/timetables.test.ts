import { describe, expect, it } from 'vitest';
import { dag, DagDefinitionError, intervalsToRun, validateSchedule } from '../../core/index.ts';

const start = new Date('2024-01-01T00:00:00Z');
const at = (iso: string) => new Date(`2024-01-01T${iso}Z`);
const base = { timezone: 'UTC', startDate: start, endDate: null, catchup: true, lastIntervalEnd: null, now: at('02:10:00') };
const spans = (xs: { start: Date; end: Date }[]) => xs.map((x) => `${x.start.toISOString().slice(11, 16)}-${x.end.toISOString().slice(11, 16)}`);

describe('duration schedules', () => {
  it('cuts intervals of the duration from startDate, each due once it has ended', () => {
    expect(spans(intervalsToRun({ ...base, schedule: '30m' }))).toEqual(['00:00-00:30', '00:30-01:00', '01:00-01:30', '01:30-02:00']);
  });

  it('continues after the last interval created, in chunks of the limit', () => {
    expect(spans(intervalsToRun({ ...base, schedule: '30m', lastIntervalEnd: at('01:00:00'), limit: 1 }))).toEqual(['01:00-01:30']);
    expect(intervalsToRun({ ...base, schedule: '30m', lastIntervalEnd: at('02:00:00') })).toEqual([]);
  });

  it('creates only the latest due interval without catchup, and none starting after endDate', () => {
    expect(spans(intervalsToRun({ ...base, schedule: '30m', catchup: false }))).toEqual(['01:30-02:00']);
    expect(spans(intervalsToRun({ ...base, schedule: '1h', endDate: at('00:30:00') }))).toEqual(['00:00-01:00']);
  });

  it('refuses a duration under a second', () => {
    expect(validateSchedule('500ms', 'UTC')).toMatch(/shorter than 1s/);
    expect(validateSchedule('1h30m', 'UTC')).toBeNull();
  });
});

describe('@once', () => {
  it('runs once at startDate, and never again', () => {
    expect(intervalsToRun({ ...base, schedule: '@once' })).toEqual([{ start, end: start }]);
    expect(intervalsToRun({ ...base, schedule: '@once', lastIntervalEnd: start })).toEqual([]);
    expect(intervalsToRun({ ...base, schedule: '@once', now: new Date(start.getTime() - 1) })).toEqual([]);
  });
});

describe('@continuous', () => {
  it('starts a run from the last interval end to now, only while no run is active', () => {
    expect(intervalsToRun({ ...base, schedule: '@continuous', activeRuns: 0 })).toEqual([{ start, end: base.now }]);
    expect(intervalsToRun({ ...base, schedule: '@continuous', lastIntervalEnd: at('02:00:00'), activeRuns: 0 }))
      .toEqual([{ start: at('02:00:00'), end: base.now }]);
    expect(intervalsToRun({ ...base, schedule: '@continuous', activeRuns: 1 })).toEqual([]);
  });

  it('refuses a DAG whose maxActiveRuns is not 1', () => {
    const make = (maxActiveRuns?: number) => () => dag({ dagId: 'cont', schedule: '@continuous', startDate: start, maxActiveRuns }, () => {});
    expect(make()).toThrow(DagDefinitionError);
    expect(make(3)).toThrow('schedule "@continuous" starts a new run as soon as the last one ends, so it needs maxActiveRuns: 1 (got 3)');
    expect(make(1)).not.toThrow();
  });

  it('names the new schedules when a preset is unknown', () => {
    expect(validateSchedule('@sometimes', 'UTC')).toMatch(/@once, @continuous.*a duration such as "30m"/);
  });
});
