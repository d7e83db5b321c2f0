/**
 * Built-in sensors: options, the deferral each one raises from `execute` (trigger kwargs,
 * resume method, timeout), what `executeComplete` makes of the trigger's event, and how a
 * failed or timed-out wait ends the task (skipped with softFail, no retry on timeout).
 */
import { describe, expect, it } from 'vitest';
import { dag } from '../../core/authoring/dag.ts';
import { TaskDeferred } from '../../core/authoring/deferral.ts';
import type { Context } from '../../core/authoring/context.ts';
import {
  BaseSensorOperator, DateTimeSensor, ExternalTaskSensor, FileSensor, SensorTimeout, TimeDeltaSensor,
} from '../../core/sensors/index.ts';
import { DateTimeTrigger, ExternalTaskTrigger, FileTrigger } from '../../core/triggers/builtin/index.ts';
import {
  DagDefinitionError, TaskDeferralError, TaskDeferralTimeout, TaskFailedNoRetry, TaskFailure, TaskSkipped,
} from '../../core/errors.ts';

const HOUR = 3_600_000;
const soon = () => new Date(Date.now() + HOUR);

/** Build one sensor inside a throwaway DAG. */
function build<T extends BaseSensorOperator>(make: () => T, dagId = 'sensing'): T {
  let op!: T;
  dag({ dagId, schedule: null }, () => {
    op = make();
  });
  return op;
}

function context(overrides: Partial<Context> = {}): Context {
  const logicalDate = overrides.logicalDate ?? new Date('2024-01-02T00:00:00Z');
  return {
    dagId: 'sensing', runId: 'manual__x', taskId: 'wait', mapIndex: -1, tryNumber: 1,
    logicalDate, dataIntervalStart: null, dataIntervalEnd: null, params: {}, conf: {},
    ti: {} as Context['ti'], signal: new AbortController().signal,
    log: { info() {}, warn() {}, error() {}, debug() {} },
    outletEvents: { add() {} },
    defer: (options) => { throw new TaskDeferred(options); },
    event: undefined, resumeKwargs: {}, previousTry: null,
    connection: async () => { throw new Error('no connections here'); },
    variable: async () => { throw new Error('no variables here'); },
    connectionSync: () => { throw new Error('no connections here'); },
    variableSync: () => { throw new Error('no variables here'); },
    ...overrides,
  };
}

/** The TaskDeferred raised by `execute`. */
async function deferral(run: Promise<unknown>): Promise<TaskDeferred> {
  try {
    await run;
  } catch (signal) {
    expect(signal).toBeInstanceOf(TaskDeferred);
    return signal as TaskDeferred;
  }
  throw new Error('execute returned instead of deferring');
}

describe('BaseSensorOperator options', () => {
  it('defaults like Airflow (7-day timeout, 60 s poke) and runs on the event loop', () => {
    const op = build(() => new FileSensor({ taskId: 'wait', filepath: '/data/x' }));
    expect({ softFail: op.softFail, timeout: op.timeout, pokeInterval: op.pokeInterval }).toEqual({ softFail: false, timeout: 7 * 24 * HOUR, pokeInterval: 60_000 });
    expect(op.mode).toBe('async');
  });

  it('reads durations and passes task options through to BaseOperator', () => {
    const op = build(() => new FileSensor({ taskId: 'wait', filepath: '/data/x', timeout: '2h', pokeInterval: '30s', softFail: true, retries: 2 }));
    expect({ timeout: op.timeout, pokeInterval: op.pokeInterval, softFail: op.softFail, retries: op.options.retries }).toEqual({ timeout: 2 * HOUR, pokeInterval: 30_000, softFail: true, retries: 2 });
  });

  it.each([
    [{ timeout: 'soon' }, /task "wait": invalid options: timeout: "soon" is not a duration/],
    [{ pokeInterval: 5 }, /pokeInterval: must be at least 100 ms/],
    [{ softFail: 'yes' }, /softFail/],
    [{ bogus: 1 }, /Unrecognized key: "bogus"/],
  ])('rejects %j at DAG import', (extra, message) => {
    const attempt = () => build(() => new FileSensor({ taskId: 'wait', filepath: '/data/x', ...(extra as object) }));
    expect(attempt).toThrow(DagDefinitionError);
    expect(attempt).toThrow(message);
  });
});

describe('onDeferralFailure', () => {
  const failure = new TaskDeferralError('trigger updraft.FileTrigger raised: EACCES');
  const timeout = new TaskDeferralTimeout('deferral timed out after 3600000 ms');

  it('skips with softFail, naming the sensor and the original error', () => {
    const op = build(() => new FileSensor({ taskId: 'wait', filepath: '/data/x', softFail: true }));
    for (const error of [failure, timeout]) {
      let thrown: unknown;
      try { op.onDeferralFailure(context(), error); } catch (e) { thrown = e; }
      expect(thrown).toBeInstanceOf(TaskSkipped);
      expect((thrown as Error).message).toBe(`sensor "wait" of DAG "sensing" skipped (softFail) because its wait failed: ${error.message}`);
      expect((thrown as Error).cause).toBe(error);
    }
  });

  it('rethrows a trigger failure without softFail, so retries apply', () => {
    const op = build(() => new FileSensor({ taskId: 'wait', filepath: '/data/x' }));
    expect(() => op.onDeferralFailure(context(), failure)).toThrow(failure);
  });

  it('turns a timeout into a SensorTimeout that does not retry', () => {
    const op = build(() => new FileSensor({ taskId: 'wait', filepath: '/data/x', retries: 3 }));
    let thrown: unknown;
    try { op.onDeferralFailure(context(), timeout); } catch (e) { thrown = e; }
    expect(thrown).toBeInstanceOf(SensorTimeout);
    expect(thrown).toBeInstanceOf(TaskFailedNoRetry);
    expect((thrown as TaskFailedNoRetry).retryable).toBe(false);
    expect((thrown as Error).message).toBe(`sensor "wait" of DAG "sensing" timed out: ${timeout.message}`);
  });
});

describe('DateTimeSensor', () => {
  it('defers to a DateTimeTrigger at the target, resuming in executeComplete within its timeout', async () => {
    const target = soon();
    const op = build(() => new DateTimeSensor({ taskId: 'wait', targetTime: target.toISOString(), timeout: '1d' }));
    const { options } = await deferral(op.execute(context()));
    expect(options.trigger).toBeInstanceOf(DateTimeTrigger);
    expect(options.trigger.serialize()).toEqual({ name: 'updraft.DateTimeTrigger', kwargs: { moment: target.toISOString() } });
    expect(options.method).toBe('executeComplete');
    expect(options.timeout).toBe(24 * HOUR);
    expect(op.executeComplete(context({ event: { moment: target.toISOString() } }))).toBeUndefined();
  });

  it('computes the target from the context when given a function', async () => {
    const op = build(() => new DateTimeSensor({ taskId: 'wait', targetTime: (ctx) => new Date(ctx.logicalDate.getTime() + 10 * 365 * 24 * HOUR) }));
    const { options } = await deferral(op.execute(context({ logicalDate: new Date('2024-01-01T00:00:00Z') })));
    expect(options.trigger.kwargs).toEqual({ moment: new Date(Date.UTC(2024, 0, 1) + 10 * 365 * 24 * HOUR).toISOString() });
  });

  it('succeeds without deferring when the target has passed', async () => {
    const op = build(() => new DateTimeSensor({ taskId: 'wait', targetTime: new Date('2020-01-01T00:00:00Z') }));
    await expect(op.execute(context())).resolves.toBeUndefined();
  });

  it.each([['2030-01-01'], ['tomorrow']])('rejects targetTime %j at DAG import', (targetTime) => {
    expect(() => build(() => new DateTimeSensor({ taskId: 'wait', targetTime }))).toThrow(/targetTime ".*" is not an ISO 8601 instant with a zone/);
  });

  it('fails without retry when a targetTime function returns an invalid date', async () => {
    const op = build(() => new DateTimeSensor({ taskId: 'wait', targetTime: () => new Date('nope') }));
    await expect(op.execute(context())).rejects.toThrow(TaskFailedNoRetry);
  });
});

describe('TimeDeltaSensor', () => {
  it('waits until data_interval_end + delta', async () => {
    const end = new Date(Date.now() - 60_000);
    const op = build(() => new TimeDeltaSensor({ taskId: 'wait', delta: '1h' }));
    const { options } = await deferral(op.execute(context({ dataIntervalEnd: end })));
    expect(options.trigger.kwargs).toEqual({ moment: new Date(end.getTime() + HOUR).toISOString() });
    expect(options.timeout).toBe(7 * 24 * HOUR);
  });

  it('uses the logical date for manual runs, which have no data interval', async () => {
    const logicalDate = new Date(Date.now() - 60_000);
    const op = build(() => new TimeDeltaSensor({ taskId: 'wait', delta: 2 * HOUR }));
    const { options } = await deferral(op.execute(context({ logicalDate })));
    expect(options.trigger.kwargs).toEqual({ moment: new Date(logicalDate.getTime() + 2 * HOUR).toISOString() });
  });

  it('succeeds at once for an old run', async () => {
    const op = build(() => new TimeDeltaSensor({ taskId: 'wait', delta: '1h' }));
    await expect(op.execute(context({ dataIntervalEnd: new Date('2020-01-01T00:00:00Z') }))).resolves.toBeUndefined();
  });

  it('rejects a malformed delta at DAG import', () => {
    expect(() => build(() => new TimeDeltaSensor({ taskId: 'wait', delta: 'an hour' }))).toThrow(/delta: "an hour" is not a duration/);
  });
});

describe('FileSensor', () => {
  it('defers to a FileTrigger polling every pokeInterval, and returns the matched paths', async () => {
    const op = build(() => new FileSensor({ taskId: 'wait', filepath: '/data/in/*.csv', minCount: 2, pokeInterval: '30s', timeout: '6h' }));
    const { options } = await deferral(op.execute(context()));
    expect(options.trigger).toBeInstanceOf(FileTrigger);
    expect(options.trigger.serialize()).toEqual({ name: 'updraft.FileTrigger', kwargs: { pattern: '/data/in/*.csv', pokeIntervalMs: 30_000, minCount: 2 } });
    expect(options.method).toBe('executeComplete');
    expect(options.timeout).toBe(6 * HOUR);
    const event = { paths: ['/data/in/a.csv', '/data/in/b.csv'] };
    expect(op.executeComplete(context({ event }))).toEqual(event.paths);
    expect(op.executeComplete(context(), event)).toEqual(event.paths);
  });

  it('builds the path from the context when given a function', async () => {
    const op = build(() => new FileSensor({ taskId: 'wait', filepath: (ctx) => `/data/${ctx.logicalDate.toISOString().slice(0, 10)}/_SUCCESS` }));
    const { options } = await deferral(op.execute(context()));
    expect(options.trigger.kwargs).toMatchObject({ pattern: '/data/2024-01-02/_SUCCESS' });
  });

  it.each([
    [{ filepath: 'data/x' }, /filepath "data\/x" must be absolute/],
    [{ filepath: '/data/x', minCount: 0 }, /minCount must be a whole number of at least 1/],
  ])('rejects %j at DAG import', (extra, message) => {
    expect(() => build(() => new FileSensor({ taskId: 'wait', ...extra }))).toThrow(message);
  });

  it('fails on an event that is not a FileTrigger payload', () => {
    const op = build(() => new FileSensor({ taskId: 'wait', filepath: '/data/x' }));
    expect(() => op.executeComplete(context({ event: { moment: 'x' } }))).toThrow(TaskFailure);
  });
});

describe('ExternalTaskSensor', () => {
  it('defers to an ExternalTaskTrigger at logicalDate - executionDelta', async () => {
    const op = build(() => new ExternalTaskSensor({
      taskId: 'wait', externalDagId: 'upstream', externalTaskId: 'load', executionDelta: '1h', pokeInterval: '10s',
      allowedStates: ['success', 'skipped'], timeout: '3h',
    }));
    const { options } = await deferral(op.execute(context({ logicalDate: new Date('2024-01-02T00:00:00Z') })));
    expect(options.trigger).toBeInstanceOf(ExternalTaskTrigger);
    expect(options.trigger.serialize()).toEqual({
      name: 'updraft.ExternalTaskTrigger',
      kwargs: {
        dagId: 'upstream', taskId: 'load', logicalDate: '2024-01-01T23:00:00.000Z', allowedStates: ['success', 'skipped'],
        failedStates: ['failed', 'upstream_failed'], pokeIntervalMs: 10_000,
      },
    });
    expect(options.method).toBe('executeComplete');
    expect(options.timeout).toBe(3 * HOUR);
  });

  it('waits for the whole run when no task is named', async () => {
    const op = build(() => new ExternalTaskSensor({ taskId: 'wait', externalDagId: 'upstream' }));
    const { options } = await deferral(op.execute(context()));
    expect(options.trigger.kwargs).toMatchObject({ taskId: null, logicalDate: '2024-01-02T00:00:00.000Z' });
  });

  it('returns the observed state when it is allowed', () => {
    const op = build(() => new ExternalTaskSensor({ taskId: 'wait', externalDagId: 'upstream', externalTaskId: 'load' }));
    expect(op.executeComplete(context({ event: { state: 'allowed', observed: 'success' } }))).toBe('success');
  });

  it('fails without retry on a failed external state, naming it', () => {
    const op = build(() => new ExternalTaskSensor({ taskId: 'wait', externalDagId: 'upstream', externalTaskId: 'load', retries: 3 }));
    const attempt = () => op.executeComplete(context({ event: { state: 'failed', observed: 'upstream_failed' } }));
    expect(attempt).toThrow(TaskFailedNoRetry);
    expect(attempt).toThrow('sensor "wait" of DAG "sensing" failed: task "load" of DAG "upstream" at logical date 2024-01-02T00:00:00.000Z ended in state "upstream_failed"');
  });

  it('names the run when waiting for a whole DAG run, and skips with softFail', () => {
    const op = build(() => new ExternalTaskSensor({ taskId: 'wait', externalDagId: 'upstream', softFail: true }));
    const attempt = () => op.executeComplete(context({ event: { state: 'failed', observed: 'failed' } }));
    expect(attempt).toThrow(TaskSkipped);
    expect(attempt).toThrow('sensor "wait" of DAG "sensing" skipped (softFail) because the run of DAG "upstream" at logical date 2024-01-02T00:00:00.000Z ended in state "failed"');
  });

  it('fails on an event that is not an ExternalTaskTrigger payload', () => {
    const op = build(() => new ExternalTaskSensor({ taskId: 'wait', externalDagId: 'upstream' }));
    expect(() => op.executeComplete(context({ event: { paths: [] } }))).toThrow(TaskFailure);
  });

  it.each([
    [{ externalDagId: 'upstream', allowedStates: ['succeeded'] }, /allowedStates\.0: Invalid option/],
    [{ externalDagId: 'upstream', failedStates: ['success'] }, /states success are both allowed and failed/],
    [{ externalDagId: 'upstream', executionDelta: 'a day' }, /executionDelta: "a day" is not a duration/],
    [{ externalDagId: 'sensing', externalTaskId: 'wait' }, /cannot wait for itself/],
  ])('rejects %j at DAG import', (extra, message) => {
    expect(() => build(() => new ExternalTaskSensor({ taskId: 'wait', ...extra }))).toThrow(message);
  });
});
