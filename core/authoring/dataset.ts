/**
 * Datasets, with Airflow's semantics: a URI naming data that tasks produce and DAGs wait for.
 * A task's `outlets` say what it updates, and each successful try records one event per outlet.
 * A DAG whose `schedule` is a dataset, a list of datasets (all of them) or an any()/all()
 * condition gets a run once the condition holds over the events since its last such run.
 * This module is pure: it builds and checks conditions, and vets the events a task adds at
 * run time, so the database layer only ever sees valid URIs and JSON extras.
 */
import { z } from 'zod';
import { InvalidDatasetConditionError, InvalidDatasetEventError, InvalidDatasetUriError } from '../errors.ts';
import { findJsonProblem } from '../model/json-value.ts';

/** Airflow's limit on a URI's length; longer ones are almost certainly a mistake. */
const MAX_URI_LENGTH = 3000;

// A scheme as RFC 3986 spells it (a letter, then letters, digits, "+", "-" or "."), a colon, then the rest.
const uriSchema = z.string('it is not a string')
  .min(1, 'it is empty')
  .max(MAX_URI_LENGTH, `it is longer than ${MAX_URI_LENGTH} characters`)
  .refine((s) => !/\s/.test(s), 'it contains whitespace')
  .refine((s) => /^[A-Za-z][A-Za-z0-9+.-]*:./.test(s), 'it has no scheme (such as "s3:" or "file:")');

/** Data a task produces; identity is the URI, exactly as written. */
export class Dataset {
  readonly uri: string;

  constructor(uri: string) {
    const parsed = uriSchema.safeParse(uri);
    if (!parsed.success) throw new InvalidDatasetUriError(uri, parsed.error.issues[0].message);
    this.uri = parsed.data;
  }

  toString(): string {
    return this.uri;
  }
}

abstract class DatasetGroup {
  constructor(readonly kind: 'all' | 'any', readonly conditions: readonly DatasetCondition[]) {
    if (!conditions.length) throw new InvalidDatasetConditionError(`${this.kind}() needs at least one dataset or condition`);
    conditions.forEach((c, i) => {
      if (!isCondition(c)) {
        throw new InvalidDatasetConditionError(`${this.kind}() got ${describeValue(c)} as argument ${i + 1}; pass datasets made with dataset(uri), or nested any()/all()`);
      }
    });
  }
}

/** Holds when every member holds. */
export class DatasetAll extends DatasetGroup {
  declare readonly kind: 'all';
  constructor(conditions: readonly DatasetCondition[]) {
    super('all', conditions);
  }
}

/** Holds when at least one member holds. */
export class DatasetAny extends DatasetGroup {
  declare readonly kind: 'any';
  constructor(conditions: readonly DatasetCondition[]) {
    super('any', conditions);
  }
}

export type DatasetCondition = Dataset | DatasetAll | DatasetAny;

/** What a DAG's `schedule` may be besides a cron string or null. */
export type DatasetSchedule = DatasetCondition | readonly Dataset[];

export type SerializedCondition = { uri: string } | { all: SerializedCondition[] } | { any: SerializedCondition[] };

/** A dataset; throws InvalidDatasetUriError for a value that is not a URI with a scheme. */
export function dataset(uri: string): Dataset {
  return new Dataset(uri);
}

/** Every condition must hold: each dataset has at least one new event. */
export function all(...conditions: DatasetCondition[]): DatasetAll {
  return new DatasetAll(conditions);
}

/** At least one condition must hold. */
export function any(...conditions: DatasetCondition[]): DatasetAny {
  return new DatasetAny(conditions);
}

function isCondition(value: unknown): value is DatasetCondition {
  return value instanceof Dataset || value instanceof DatasetGroup;
}

export function isDatasetSchedule(value: unknown): value is DatasetSchedule {
  return isCondition(value) || Array.isArray(value);
}

/** The condition a dataset schedule means: a list is all() of its datasets. */
export function scheduleCondition(schedule: DatasetSchedule): DatasetCondition {
  if (!Array.isArray(schedule)) return schedule as DatasetCondition;
  const list = schedule as readonly unknown[];
  if (!list.length) throw new InvalidDatasetConditionError('the schedule is an empty list of datasets; use null for manual runs only');
  list.forEach((d, i) => {
    if (!(d instanceof Dataset)) {
      throw new InvalidDatasetConditionError(`element ${i + 1} of the schedule list is ${describeValue(d)}, not a dataset; a list holds datasets only (nest conditions with any()/all())`);
    }
  });
  return new DatasetAll(list as Dataset[]);
}

/** Every URI the condition mentions, once each, in order of appearance. */
export function conditionUris(condition: DatasetCondition): string[] {
  if (condition instanceof Dataset) return [condition.uri];
  return [...new Set(condition.conditions.flatMap(conditionUris))];
}

/** Whether the condition holds, given the URIs that have at least one new event. */
export function conditionHolds(condition: DatasetCondition, updated: ReadonlySet<string>): boolean {
  if (condition instanceof Dataset) return updated.has(condition.uri);
  const held = (c: DatasetCondition) => conditionHolds(c, updated);
  return condition.kind === 'all' ? condition.conditions.every(held) : condition.conditions.some(held);
}

export function serializeCondition(condition: DatasetCondition): SerializedCondition {
  if (condition instanceof Dataset) return { uri: condition.uri };
  const members = condition.conditions.map(serializeCondition);
  return condition.kind === 'all' ? { all: members } : { any: members };
}

/** `all(s3://a, any(s3://b, s3://c))`, for listings. */
export function describeCondition(condition: DatasetCondition): string {
  if (condition instanceof Dataset) return condition.uri;
  return `${condition.kind}(${condition.conditions.map(describeCondition).join(', ')})`;
}

/** An event a successful try records: the dataset's URI and a JSON object of extra detail. */
export interface OutletEventData {
  uri: string;
  extra: Record<string, unknown>;
}

/** Events as stored in a deferred TI's next_kwargs, read back at the boundary. */
export const outletEventsSchema = z.array(z.object({ uri: uriSchema, extra: z.record(z.string(), z.unknown()) }));

const extraSchema = z.record(z.string(), z.unknown(), 'extra must be a plain object of JSON values').optional();

/** Vet an event a task adds with `ctx.outletEvents.add(target, extra)`. */
export function outletEvent(target: unknown, extra: unknown, where: { dagId: string; taskId: string }): OutletEventData {
  const fail = (detail: string) => new InvalidDatasetEventError(where.dagId, where.taskId, detail);
  // A Dataset from another copy of this module (a thread's own import) is re-checked by its URI.
  const uri = target instanceof Dataset ? target.uri : (target as { uri?: unknown } | null)?.uri;
  if (typeof uri !== 'string') throw fail(`the first argument is ${describeValue(target)}, not a dataset; pass dataset("scheme://...")`);
  try {
    new Dataset(uri);
  } catch (err) {
    throw fail((err as Error).message);
  }
  const parsed = extraSchema.safeParse(extra);
  if (!parsed.success || (extra !== undefined && Object.getPrototypeOf(extra) !== Object.prototype)) {
    throw fail(`extra for ${uri} must be a plain object of JSON values, got ${describeValue(extra)}`);
  }
  const problem = findJsonProblem(extra ?? {}, 'extra');
  if (problem) throw fail(`extra for ${uri} cannot be stored as JSON: ${problem.what} at ${problem.at}`);
  return { uri, extra: parsed.data ?? {} };
}

/**
 * The events a successful try records: one per declared outlet, unless the task added its own
 * events for that dataset (those then stand in for it), followed by the added events.
 */
export function withDeclaredOutlets(outletUris: readonly string[], added: readonly OutletEventData[]): OutletEventData[] {
  const covered = new Set(added.map((e) => e.uri));
  const declared = [...new Set(outletUris)].filter((uri) => !covered.has(uri));
  return [...declared.map((uri) => ({ uri, extra: {} })), ...added];
}

function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'an array';
  if (v && typeof v === 'object') return v.constructor === Object ? 'a plain object' : `an instance of ${v.constructor?.name ?? 'a class'}`;
  return String(v);
}
