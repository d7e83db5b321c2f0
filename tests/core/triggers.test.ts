/**
 * Built-in triggers: their stored form (registry round trip, kwargs validation) and their run()
 * behaviour, driven directly with a fake triggerer runtime. ExternalTaskTrigger polls a real
 * in-memory PGlite database.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { and, eq } from 'drizzle-orm';
import {
  DateTimeTrigger, TimeDeltaTrigger, FileTrigger, ExternalTaskTrigger,
} from '../../core/triggers/builtin/index.ts';
import { deserializeTrigger, registeredTriggerNames, serializeTrigger } from '../../core/triggers/registry.ts';
import type { BaseTrigger, TriggerRuntime } from '../../core/triggers/base-trigger.ts';
import { TriggerEvent } from '../../core/triggers/events.ts';
import { openDatabase, type Database } from '../../core/db/client.ts';
import { dagRuns, taskInstances } from '../../core/db/schema.ts';
import { InvalidTriggerKwargsError, UnknownTriggerError } from '../../core/errors.ts';

const noDb = {} as Database;

function runtime(signal: AbortSignal, database: Database): TriggerRuntime {
  const none = async (): Promise<never> => { throw new Error('no connections or variables here'); };
  return { signal, database, triggerId: 1, log: { info() {}, warn() {}, error() {}, debug() {} }, connection: none, variable: none };
}

/** Run a trigger to its first event; null if it returned without one. */
function start(trigger: BaseTrigger<any>, database: Database = noDb) {
  const controller = new AbortController();
  trigger.runtime = runtime(controller.signal, database);
  const first = (async () => {
    for await (const event of trigger.run()) return event;
    return null;
  })();
  return { first, abort: () => controller.abort() };
}

/** Resolves after the trigger's `method` has completed `n` times. */
function afterCalls<T extends object>(target: T, method: keyof T & string, n = 1): Promise<void> {
  const original = (target[method] as (...a: unknown[]) => Promise<unknown>).bind(target);
  let calls = 0;
  return new Promise((resolve) => {
    (target as Record<string, unknown>)[method] = async (...args: unknown[]) => {
      const result = await original(...args);
      if (++calls === n) setImmediate(resolve);
      return result;
    };
  });
}

const future = new Date(Date.now() + 86_400_000).toISOString();

describe('trigger registry', () => {
  it('registers every built-in under a stable, namespaced name', () => {
    expect(registeredTriggerNames()).toEqual(expect.arrayContaining([
      'updraft.DateTimeTrigger', 'updraft.TimeDeltaTrigger', 'updraft.FileTrigger', 'updraft.ExternalTaskTrigger',
    ]));
  });

  it.each([
    ['DateTimeTrigger', () => new DateTimeTrigger({ moment: '2030-01-01T00:00:00Z' }), { moment: '2030-01-01T00:00:00.000Z' }],
    ['TimeDeltaTrigger', () => new TimeDeltaTrigger({ moment: new Date('2030-01-01T00:00:00Z') }), { moment: '2030-01-01T00:00:00.000Z' }],
    ['FileTrigger', () => new FileTrigger({ pattern: '/data/in/*.csv' }), { pattern: '/data/in/*.csv', pokeIntervalMs: 5_000, minCount: 1 }],
    ['ExternalTaskTrigger', () => new ExternalTaskTrigger({ dagId: 'up', taskId: 'load', logicalDate: '2024-01-01T00:00:00Z' }), {
      dagId: 'up', taskId: 'load', logicalDate: '2024-01-01T00:00:00.000Z', allowedStates: ['success'],
      failedStates: ['failed', 'upstream_failed'], pokeIntervalMs: 5_000,
    }],
  ])('%s survives serialize → JSON → deserializeTrigger', (cls, make, kwargs) => {
    const trigger = make();
    const stored = JSON.parse(JSON.stringify(trigger.serialize()));
    expect(stored).toEqual({ name: `updraft.${cls}`, kwargs });
    expect(serializeTrigger(trigger)).toEqual(stored);
    const back = deserializeTrigger(stored);
    expect(back.constructor.name).toBe(cls);
    expect(back.kwargs).toEqual(kwargs);
    expect(back.serialize()).toEqual(stored);
  });

  it.each([
    ['updraft.DateTimeTrigger', { moment: '2030-01-01' }, 'moment'],
    ['updraft.DateTimeTrigger', { moment: '2030-01-01T00:00:00' }, 'moment'],
    ['updraft.TimeDeltaTrigger', { moment: 'soon' }, 'moment'],
    ['updraft.FileTrigger', { pattern: 'data/*.csv' }, 'pattern'],
    ['updraft.FileTrigger', { pattern: '/data/x', pokeIntervalMs: 5 }, 'pokeIntervalMs'],
    ['updraft.FileTrigger', { pattern: '/data/x', minCount: 0 }, 'minCount'],
    ['updraft.FileTrigger', { pattern: '/data/x', extra: true }, 'extra'],
    ['updraft.ExternalTaskTrigger', { dagId: 'up', logicalDate: '2024-01-01T00:00:00Z', allowedStates: ['succeeded'] }, 'allowedStates'],
    ['updraft.ExternalTaskTrigger', { dagId: 'up', logicalDate: '2024-01-01T00:00:00Z', failedStates: ['success'] }, 'both allowed and failed'],
    ['updraft.ExternalTaskTrigger', { taskId: 'load', logicalDate: '2024-01-01T00:00:00Z' }, 'dagId'],
  ])('%s rejects invalid kwargs %j, naming the trigger', (name, kwargs, mention) => {
    const attempt = () => deserializeTrigger({ name, kwargs });
    expect(attempt).toThrow(InvalidTriggerKwargsError);
    expect(attempt).toThrow(`trigger "${name}" has invalid kwargs`);
    expect(attempt).toThrow(mention);
  });

  it('refuses to serialize invalid kwargs', () => {
    expect(() => serializeTrigger(new FileTrigger({ pattern: 'relative/*.csv' }))).toThrow(/trigger "updraft.FileTrigger" has invalid kwargs: pattern: must be an absolute/);
  });

  it('names an unknown trigger and lists the registered ones', () => {
    const attempt = () => deserializeTrigger({ name: 'updraft.NoSuchTrigger', kwargs: {} });
    expect(attempt).toThrow(UnknownTriggerError);
    expect(attempt).toThrow(/unknown trigger "updraft.NoSuchTrigger"; registered triggers: .*updraft.DateTimeTrigger/);
  });
});

describe('DateTimeTrigger', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('stores the moment in canonical UTC, so equal instants serialize equally', () => {
    const a = new DateTimeTrigger({ moment: '2030-01-01T02:00:00+02:00' }).serialize();
    const b = new DateTimeTrigger({ moment: new Date(Date.UTC(2030, 0, 1)) }).serialize();
    expect(a).toEqual(b);
  });

  it('fires at once when the moment has passed', async () => {
    const { first } = start(new DateTimeTrigger({ moment: '2020-01-01T00:00:00Z' }));
    const event = await first;
    expect(event).toBeInstanceOf(TriggerEvent);
    expect(event?.payload).toEqual({ moment: '2020-01-01T00:00:00.000Z' });
  });

  it('fires no earlier than a near moment', async () => {
    const target = Date.now() + 60;
    const { first } = start(new DateTimeTrigger({ moment: new Date(target) }));
    const event = await first;
    expect(Date.now()).toBeGreaterThanOrEqual(target);
    expect(event?.payload).toEqual({ moment: new Date(target).toISOString() });
  });

  it('waits past setTimeout\'s 24.8-day ceiling in chunks, on one timer at a time', async () => {
    vi.useFakeTimers({ now: Date.UTC(2030, 0, 1) });
    const moment = new Date(Date.UTC(2030, 1, 10)); // 40 days on
    const { first } = start(new DateTimeTrigger({ moment }));
    let fired = false;
    void first.then(() => { fired = true; });
    await vi.advanceTimersByTimeAsync(39 * 86_400_000);
    expect(fired).toBe(false);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(86_400_000);
    expect(fired).toBe(true);
    expect((await first)?.payload).toEqual({ moment: moment.toISOString() });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stops on abort without yielding, and leaves no timer behind', async () => {
    vi.useFakeTimers();
    const { first, abort } = start(new DateTimeTrigger({ moment: future }));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(vi.getTimerCount()).toBe(1);
    abort();
    await expect(first).resolves.toBeNull();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('yields the same payload for the same kwargs (redundant triggerers agree)', async () => {
    const moment = '2021-06-01T12:00:00Z';
    const [a, b] = await Promise.all([start(new DateTimeTrigger({ moment })).first, start(new DateTimeTrigger({ moment })).first]);
    expect(a?.payload).toEqual(b?.payload);
  });
});

describe('TimeDeltaTrigger', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fixes its moment when created, from milliseconds or a duration string', () => {
    vi.useFakeTimers({ now: Date.UTC(2030, 0, 1) });
    expect(TimeDeltaTrigger.after('1h30m').kwargs).toEqual({ moment: '2030-01-01T01:30:00.000Z' });
    expect(TimeDeltaTrigger.after(500).serialize()).toEqual({ name: 'updraft.TimeDeltaTrigger', kwargs: { moment: '2030-01-01T00:00:00.500Z' } });
  });

  it('fires after its delta', async () => {
    const before = Date.now();
    const trigger = TimeDeltaTrigger.after(50);
    const event = await start(trigger).first;
    expect(Date.now() - before).toBeGreaterThanOrEqual(50);
    expect(event?.payload).toEqual({ moment: trigger.kwargs.moment });
  });

  it.each([['soon'], [-1]])('rejects delta %j, naming the trigger', (delta) => {
    expect(() => TimeDeltaTrigger.after(delta)).toThrow(InvalidTriggerKwargsError);
    expect(() => TimeDeltaTrigger.after(delta)).toThrow(`trigger "updraft.TimeDeltaTrigger" has invalid kwargs: delta ${JSON.stringify(delta)}`);
  });
});

describe('FileTrigger', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'updraft-file-trigger-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('checks at once, then fires on the poke after the file appears', async () => {
    const file = path.join(dir, 'ready.flag');
    const trigger = new FileTrigger({ pattern: file, pokeIntervalMs: 100 });
    const firstPoll = afterCalls(trigger, 'check');
    const { first } = start(trigger);
    await firstPoll;
    await writeFile(file, 'ok');
    expect((await first)?.payload).toEqual({ paths: [file] });
  });

  it('matches a glob, files only, sorted, once minCount files exist', async () => {
    const sub = path.join(dir, 'glob');
    await rm(sub, { recursive: true, force: true });
    await mkdir(path.join(sub, 'dir.csv'), { recursive: true });
    await writeFile(path.join(sub, 'c.csv'), '');
    await writeFile(path.join(sub, 'skip.txt'), '');
    const trigger = new FileTrigger({ pattern: path.join(sub, '*.csv'), pokeIntervalMs: 100, minCount: 2 });
    const firstPoll = afterCalls(trigger, 'check');
    const { first } = start(trigger);
    await firstPoll;
    await writeFile(path.join(sub, 'a.csv'), '');
    expect((await first)?.payload).toEqual({ paths: [path.join(sub, 'a.csv'), path.join(sub, 'c.csv')] });
  });

  it('treats a directory at a plain path as no match', async () => {
    const trigger = new FileTrigger({ pattern: dir, pokeIntervalMs: 100 });
    const firstPoll = afterCalls(trigger, 'check');
    const { first, abort } = start(trigger);
    await firstPoll;
    abort();
    await expect(first).resolves.toBeNull();
  });

  it('stops promptly on abort, mid-interval, without yielding', async () => {
    const trigger = new FileTrigger({ pattern: path.join(dir, 'never', '*.csv'), pokeIntervalMs: 60_000 });
    const firstPoll = afterCalls(trigger, 'check');
    const began = Date.now();
    const { first, abort } = start(trigger);
    await firstPoll;
    abort();
    await expect(first).resolves.toBeNull();
    expect(Date.now() - began).toBeLessThan(5_000);
  });
});

describe('ExternalTaskTrigger', () => {
  let database: Database;
  let runPk: number;
  const logicalDate = new Date('2024-01-01T00:00:00Z');

  beforeAll(async () => {
    database = await openDatabase({ dataDir: 'memory://' });
    await database.migrate();
    [{ id: runPk }] = await database.db.insert(dagRuns).values({
      dagId: 'upstream', runId: 'scheduled__2024-01-01', runType: 'scheduled', state: 'running', logicalDate, queuedAt: new Date(),
    }).returning({ id: dagRuns.id });
    await database.db.insert(taskInstances).values([
      { runPk, dagId: 'upstream', runId: 'scheduled__2024-01-01', taskId: 'load', state: 'running', operator: 'FunctionTask' },
      ...[0, 1, 2].map((mapIndex) => ({
        runPk, dagId: 'upstream', runId: 'scheduled__2024-01-01', taskId: 'mapped', mapIndex, state: 'running', operator: 'FunctionTask',
      })),
    ]);
  });
  afterAll(async () => {
    await database?.close();
  });

  const setTi = (taskId: string, state: string, mapIndex = -1) => database.db.update(taskInstances).set({ state })
    .where(and(eq(taskInstances.taskId, taskId), eq(taskInstances.mapIndex, mapIndex)));
  const setRun = (state: string) => database.db.update(dagRuns).set({ state }).where(eq(dagRuns.id, runPk));

  it('waits while the task runs, then reports an allowed state', async () => {
    await setTi('load', 'running');
    // An offset ISO date names the same logical date.
    const trigger = new ExternalTaskTrigger({ dagId: 'upstream', taskId: 'load', logicalDate: '2024-01-01T01:00:00+01:00', pokeIntervalMs: 100 });
    const polls = afterCalls(trigger, 'observe');
    const { first } = start(trigger, database);
    await polls;
    await setTi('load', 'success');
    expect((await first)?.payload).toEqual({ state: 'allowed', observed: 'success' });
  });

  it('reports a failed state', async () => {
    await setTi('load', 'upstream_failed');
    const trigger = new ExternalTaskTrigger({ dagId: 'upstream', taskId: 'load', logicalDate: logicalDate.toISOString(), pokeIntervalMs: 100 });
    expect((await start(trigger, database).first)?.payload).toEqual({ state: 'failed', observed: 'upstream_failed' });
  });

  it('watches the run\'s own state when taskId is null', async () => {
    await setRun('running');
    const trigger = new ExternalTaskTrigger({ dagId: 'upstream', taskId: null, logicalDate: logicalDate.toISOString(), pokeIntervalMs: 100 });
    const polls = afterCalls(trigger, 'observe');
    const { first } = start(trigger, database);
    await polls;
    await setRun('success');
    expect((await first)?.payload).toEqual({ state: 'allowed', observed: 'success' });
  });

  it('needs every map index allowed, and fails on any failed one', async () => {
    const trigger = new ExternalTaskTrigger({ dagId: 'upstream', taskId: 'mapped', logicalDate: logicalDate.toISOString(), allowedStates: ['success', 'skipped'], pokeIntervalMs: 100 });
    trigger.runtime = runtime(new AbortController().signal, database);
    await setTi('mapped', 'success', 0);
    await setTi('mapped', 'skipped', 1);
    expect(trigger.decide(await trigger.observe())).toBeNull();
    await setTi('mapped', 'success', 2);
    expect(trigger.decide(await trigger.observe())).toEqual({ state: 'allowed', observed: 'skipped,success' });
    await setTi('mapped', 'failed', 1);
    expect(trigger.decide(await trigger.observe())).toEqual({ state: 'failed', observed: 'failed' });
  });

  it('keeps waiting for a run that does not exist yet, and stops on abort', async () => {
    const trigger = new ExternalTaskTrigger({ dagId: 'upstream', taskId: 'load', logicalDate: '2025-01-01T00:00:00Z', pokeIntervalMs: 100 });
    const polls = afterCalls(trigger, 'observe', 2);
    const { first, abort } = start(trigger, database);
    await polls;
    abort();
    await expect(first).resolves.toBeNull();
  });

  it('tolerates a database blip but fails after repeated errors', async () => {
    const failing = { db: { select: () => { throw new Error('connection reset'); } } } as unknown as Database;
    const trigger = new ExternalTaskTrigger({ dagId: 'upstream', taskId: 'load', logicalDate: logicalDate.toISOString(), pokeIntervalMs: 100 });
    await expect(start(trigger, failing).first).rejects.toThrow('connection reset');
  });
});
