/**
 * The names a template sees and how they resolve. Airflow's context (the run's dates in Airflow's
 * formats, params, run, DAG, task, task instance, `macros`) comes from buildTemplateContext; dates
 * are UTC, print as Airflow prints them, and format with Python's strftime directives. A Scope
 * serves those names to one renderFields call through recording views, so a missing name can be
 * reported by its dotted path, and resolves `var` and `conn`, whose lookups are async while
 * nunjucks is not: a render runs in passes, each noting the variables and connections it asked
 * for that are not fetched yet; they are fetched together and the template renders again, until
 * a pass asks for nothing new. A pass may see an unfetched value where a branch depends on it,
 * so a name on the branch not finally taken can be looked up too, still only once per call.
 */

export interface ContextInput {
  dagId: string;
  taskId: string;
  runId: string;
  mapIndex: number;
  tryNumber: number;
  logicalDate: Date;
  dataIntervalStart: Date | null;
  dataIntervalEnd: Date | null;
  params: Record<string, unknown>;
  conf: Record<string, unknown>;
  runType?: string;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const DAY_MS = 86_400_000;

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** Python's `isoformat()` of an aware UTC datetime: `2024-01-02T03:04:05+00:00`, microseconds only when set. */
export function isoformat(date: Date): string {
  const ms = date.getUTCMilliseconds();
  return strftime(date, ms ? '%Y-%m-%dT%H:%M:%S.%f+00:00' : '%Y-%m-%dT%H:%M:%S+00:00');
}

/** Python's `strftime` in UTC. Unknown directives are left as written, as glibc does. */
export function strftime(date: Date, format: string): string {
  const d = toDate(date, 'strftime');
  const hour12 = d.getUTCHours() % 12 || 12;
  const dayOfYear = Math.floor((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / DAY_MS) + 1;
  const directives: Record<string, () => string> = {
    Y: () => pad(d.getUTCFullYear(), 4), y: () => pad(d.getUTCFullYear() % 100), m: () => pad(d.getUTCMonth() + 1),
    d: () => pad(d.getUTCDate()), H: () => pad(d.getUTCHours()), M: () => pad(d.getUTCMinutes()), S: () => pad(d.getUTCSeconds()),
    f: () => pad(d.getUTCMilliseconds() * 1000, 6), j: () => pad(dayOfYear, 3), I: () => pad(hour12),
    p: () => (d.getUTCHours() < 12 ? 'AM' : 'PM'), b: () => MONTHS[d.getUTCMonth()].slice(0, 3), B: () => MONTHS[d.getUTCMonth()],
    a: () => WEEKDAYS[d.getUTCDay()].slice(0, 3), A: () => WEEKDAYS[d.getUTCDay()], z: () => '+0000', Z: () => 'UTC', '%': () => '%',
  };
  return String(format).replace(/%(.)/gs, (all, c: string) => directives[c]?.() ?? all);
}

const names = (list: string[], short: boolean) => list.map((n) => (short ? n.slice(0, 3) : n));
const nameIndex = (list: string[], short: boolean) => (v: string) => names(list, short).findIndex((n) => n.toLowerCase() === v.toLowerCase());

interface Parts { year: number; month: number; day: number; hour: number; minute: number; second: number; micro: number; yday: number | null; pm: boolean | null; offsetMin: number }
type Parser = [pattern: string, apply: (v: string, p: Parts) => void];

const PARSERS: Record<string, Parser> = {
  Y: ['\\d{4}', (v, p) => { p.year = Number(v); }],
  // Python's pivot: 69-99 are the 1900s, 00-68 the 2000s.
  y: ['\\d{2}', (v, p) => { p.year = Number(v) + (Number(v) < 69 ? 2000 : 1900); }],
  m: ['\\d{1,2}', (v, p) => { p.month = Number(v); }],
  d: ['\\d{1,2}', (v, p) => { p.day = Number(v); }],
  H: ['\\d{1,2}', (v, p) => { p.hour = Number(v); }],
  I: ['\\d{1,2}', (v, p) => { p.hour = Number(v); }],
  M: ['\\d{1,2}', (v, p) => { p.minute = Number(v); }],
  S: ['\\d{1,2}', (v, p) => { p.second = Number(v); }],
  f: ['\\d{1,6}', (v, p) => { p.micro = Number(v.padEnd(6, '0')); }],
  j: ['\\d{1,3}', (v, p) => { p.yday = Number(v); }],
  p: ['AM|PM', (v, p) => { p.pm = v.toUpperCase() === 'PM'; }],
  b: [names(MONTHS, true).join('|'), (v, p) => { p.month = nameIndex(MONTHS, true)(v) + 1; }],
  B: [MONTHS.join('|'), (v, p) => { p.month = nameIndex(MONTHS, false)(v) + 1; }],
  a: [names(WEEKDAYS, true).join('|'), () => {}],
  A: [WEEKDAYS.join('|'), () => {}],
  z: ['Z|[+-]\\d{2}:?\\d{2}', (v, p) => {
    if (v === 'Z') return;
    const [h, m] = [Number(v.slice(1, 3)), Number(v.slice(-2))];
    p.offsetMin = (v[0] === '-' ? -1 : 1) * (h * 60 + m);
  }],
  Z: ['UTC|GMT', () => {}],
};

/** Python's `strptime`, read as UTC unless the text carries a `%z` offset. */
export function strptime(text: string, format: string): TemplateDate {
  const appliers: Parser[1][] = [];
  let pattern = '';
  const fmt = String(format);
  for (let i = 0; i < fmt.length; i++) {
    const c = fmt[i];
    if (c !== '%') { pattern += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); continue; }
    const directive = fmt[++i];
    if (directive === '%') { pattern += '%'; continue; }
    const parser = PARSERS[directive];
    if (!parser) throw new Error(`strptime: unsupported directive "%${directive ?? ''}" in format "${fmt}"`);
    pattern += `(${parser[0]})`;
    appliers.push(parser[1]);
  }
  const match = new RegExp(`^${pattern}$`, 'i').exec(String(text));
  if (!match) throw new Error(`time data "${text}" does not match format "${fmt}"`);
  const p: Parts = { year: 1900, month: 1, day: 1, hour: 0, minute: 0, second: 0, micro: 0, yday: null, pm: null, offsetMin: 0 };
  appliers.forEach((apply, i) => apply(match[i + 1], p));
  if (p.pm !== null) p.hour = (p.hour % 12) + (p.pm ? 12 : 0);
  const date = new Date(0);
  date.setUTCFullYear(p.year, p.month - 1, p.day);
  if (p.yday !== null && !/%[mdbB]/.test(fmt)) date.setUTCFullYear(p.year, 0, p.yday);
  const valid = p.month >= 1 && p.month <= 12 && date.getUTCFullYear() === p.year && (p.yday !== null || date.getUTCDate() === p.day)
    && p.hour < 24 && p.minute < 60 && p.second < 62;
  if (!valid) throw new Error(`time data "${text}" is not a valid date for format "${fmt}"`);
  date.setUTCHours(p.hour, p.minute, p.second, Math.floor(p.micro / 1000));
  return new TemplateDate(date.getTime() - p.offsetMin * 60_000);
}

/**
 * A UTC date that behaves like the pendulum datetimes in Airflow's context: `{{ logical_date }}`
 * prints `2024-01-02T03:04:05+00:00`, and `.strftime()`, `.isoformat()`, `.year` and friends work.
 */
export class TemplateDate extends Date {
  override toString(): string { return isoformat(this); }
  isoformat(): string { return isoformat(this); }
  strftime(format: string): string { return strftime(this, format); }
  /** Seconds since the epoch, as Python's `timestamp()`. */
  timestamp(): number { return this.getTime() / 1000; }
  get year(): number { return this.getUTCFullYear(); }
  get month(): number { return this.getUTCMonth() + 1; }
  get day(): number { return this.getUTCDate(); }
  get hour(): number { return this.getUTCHours(); }
  get minute(): number { return this.getUTCMinutes(); }
  get second(): number { return this.getUTCSeconds(); }
  get microsecond(): number { return this.getUTCMilliseconds() * 1000; }
}

function toDate(value: unknown, where: string): Date {
  const d = value instanceof Date ? value : typeof value === 'string' || typeof value === 'number' ? new Date(value) : null;
  if (!d || Number.isNaN(d.getTime())) throw new Error(`${where}: expected a date, got ${JSON.stringify(value) ?? String(value)}`);
  return d;
}

function toNumber(value: unknown, where: string): number {
  const n = Number(value);
  if (typeof value === 'boolean' || value === '' || !Number.isFinite(n)) throw new Error(`${where}: expected a number, got ${JSON.stringify(value) ?? String(value)}`);
  return n;
}

// nunjucks hands keyword arguments (`days=1`) to plain functions as a trailing object with this marker.
const isKeywords = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && Object.hasOwn(v, '__keywords');

/** The built-in `macros`: Airflow's `ds_add` and `ds_format`, plus date helpers for what Python would do with `datetime`. */
export const builtinMacros: Readonly<Record<string, (...args: any[]) => unknown>> = Object.freeze({
  /** `ds_add('2024-01-30', 5)` → `2024-02-04`. */
  ds_add: (ds: string, days: unknown) => strftime(new Date(strptime(ds, '%Y-%m-%d').getTime() + toNumber(days, 'ds_add') * DAY_MS), '%Y-%m-%d'),
  /** `ds_format('2024-01-30', '%Y-%m-%d', '%d/%m/%y')` → `30/01/24`. */
  ds_format: (ds: unknown, inputFormat: string, outputFormat: string) => strftime(strptime(String(ds), inputFormat), outputFormat),
  strftime: (date: unknown, format: string) => strftime(toDate(date, 'strftime'), format),
  strptime: (text: string, format: string) => strptime(text, format),
  /** `datetime(2024, 1, 2)` or `datetime(2024, 1, 2, 3, 4, 5)`, in UTC. */
  datetime: (...args: unknown[]) => {
    const [y, mo = 1, d = 1, h = 0, mi = 0, s = 0] = args.filter((a) => !isKeywords(a)).map((a) => toNumber(a, 'datetime'));
    const date = new Date(0);
    date.setUTCFullYear(y, mo - 1, d);
    date.setUTCHours(h, mi, s, 0);
    return new TemplateDate(date.getTime());
  },
  /** `date_add(logical_date, days=-1, hours=2)`, or `date_add(logical_date, 3)` for days; Python's `date + timedelta(...)`. */
  date_add: (date: unknown, ...args: unknown[]) => {
    const kw = isKeywords(args.at(-1)) ? (args.pop() as Record<string, unknown>) : {};
    const get = (k: string, i: number) => toNumber(kw[k] ?? args[i] ?? 0, 'date_add');
    const ms = ((get('days', 0) * 24 + get('hours', 1)) * 60 + get('minutes', 2)) * 60_000 + get('seconds', 3) * 1000;
    return new TemplateDate(toDate(date, 'date_add').getTime() + ms);
  },
});

/**
 * The plain context for one task instance. A run without a data interval gets the logical date
 * for both ends, as Airflow does for unscheduled DAGs, so templates need no null checks.
 */
export function buildTemplateContext(input: ContextInput): Record<string, unknown> {
  const logicalDate = new TemplateDate(input.logicalDate.getTime());
  const ds = strftime(logicalDate, '%Y-%m-%d');
  const ts = isoformat(logicalDate);
  const ti = { dag_id: input.dagId, task_id: input.taskId, run_id: input.runId, try_number: input.tryNumber, map_index: input.mapIndex };
  return {
    ds,
    ds_nodash: ds.replace(/-/g, ''),
    ts,
    ts_nodash: strftime(logicalDate, '%Y%m%dT%H%M%S'),
    ts_nodash_with_tz: ts.replace(/[-:]/g, ''),
    logical_date: logicalDate,
    data_interval_start: new TemplateDate((input.dataIntervalStart ?? input.logicalDate).getTime()),
    data_interval_end: new TemplateDate((input.dataIntervalEnd ?? input.logicalDate).getTime()),
    params: input.params,
    run_id: input.runId,
    dag_run: { run_id: input.runId, conf: input.conf, logical_date: logicalDate, run_type: input.runType ?? null },
    dag: { dag_id: input.dagId },
    task: { task_id: input.taskId },
    ti,
    task_instance: ti,
    task_instance_key_str: `${input.dagId}__${input.taskId}__${ds.replace(/-/g, '')}`,
    macros: { ...builtinMacros },
  };
}

export interface TemplateLookups {
  /** A variable's raw string value, or undefined when it doesn't exist. */
  variable(key: string): Promise<string | undefined>;
  /** A connection as a plain object (conn_id, conn_type, host, schema, login, password, port, extra, plus connId, connType), or undefined. */
  connection(id: string): Promise<Record<string, unknown> | undefined>;
  /** An XCom of the run being rendered (undefined when absent); missing when there is no run, e.g. a preview. */
  xcom?(taskId: string, key: string, mapIndex: number): Promise<unknown>;
}

const MAX_PASSES = 10;
/** Keys JavaScript and nunjucks probe on any object; a template never means them as names. */
const PROBES = new Set(['then', 'toJSON', 'toString', 'valueOf', 'constructor', 'inspect', '__keywords', '__isSafe']);

/**
 * Stands in for a variable or connection not fetched yet, so one pass can discover every name a
 * template needs instead of stopping at the first: it prints as nothing, iterates as empty and
 * answers any attribute or call with itself. Output rendered with it is always thrown away.
 */
const PENDING: unknown = new Proxy(() => undefined, {
  get: (_t, key) => (key === Symbol.toPrimitive ? () => '' : key === Symbol.iterator ? () => [][Symbol.iterator]() : typeof key === 'symbol' ? undefined : PENDING),
  apply: () => PENDING,
});

/** Thrown from inside a render; nunjucks keeps it as the cause of its own error. */
export class RenderProblem extends Error {
  constructor(readonly undefinedName: string | null, detail: string) {
    super(detail);
  }
}

/** The scope of the render running now. nunjucks renders synchronously, so one slot is enough. */
let active: Scope | null = null;

export const activeScope = (): Scope | null => active;

export const isPlain = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/** Copies plain objects and arrays, so nothing a template or macro does reaches the caller's values. */
function clonePlain(value: unknown, seen = new Map<object, unknown>()): unknown {
  if (!Array.isArray(value) && !isPlain(value)) return value;
  if (seen.has(value)) return seen.get(value);
  const copy: Record<string, unknown> | unknown[] = Array.isArray(value) ? [] : {};
  seen.set(value, copy);
  for (const [k, v] of Object.entries(value)) (copy as Record<string, unknown>)[k] = clonePlain(v, seen);
  return copy;
}

const childPath = (path: string, key: string, inArray: boolean) => (inArray && /^\d+$/.test(key) ? `${path}[${key}]` : `${path}.${key}`);

/** Every name one renderFields call can see, the lookups it has made, and what the current pass touched. */
export class Scope {
  readonly names: Record<string, unknown>;
  private readonly vars = new Map<string, string | undefined>();
  private readonly conns = new Map<string, Record<string, unknown> | undefined>();
  private readonly parsed = new Map<string, { value: unknown } | { error: string }>();
  private readonly wrapped = new WeakMap<object, object>();
  private readonly own = new WeakSet<object>();
  private readonly pendingVars = new Set<string>();
  private readonly pendingConns = new Set<string>();
  private readonly xcoms = new Map<string, unknown>();
  private readonly pendingXComs = new Map<string, [string, string, number]>();
  /** The last name the template resolved, to say which one an "output undefined" error is about. */
  last: { path: string; missing: boolean; isNull: boolean } | null = null;

  constructor(context: Record<string, unknown>, userMacros: Record<string, unknown>, private readonly lookups: TemplateLookups) {
    const ctx = clonePlain(context) as Record<string, unknown>;
    const user = clonePlain(userMacros) as Record<string, unknown>;
    // Airflow's user_defined_macros are top-level names under the context's own; here they also join `macros`.
    this.names = {
      ...user,
      ...ctx,
      macros: { ...(isPlain(ctx.macros) ? ctx.macros : {}), ...user },
      var: { value: this.namespace((k) => this.variable(k, false)), json: this.namespace((k) => this.variable(k, true)) },
      conn: this.namespace((id) => this.connection(id)),
    };
    // Airflow's `ti.xcom_pull(task_ids='t', key='k', map_indexes=-1)`; a list of task ids gives a list.
    if (isPlain(this.names.ti)) {
      const ti = { ...this.names.ti, xcom_pull: (...args: unknown[]) => this.xcomPull(args) };
      this.names.ti = ti;
      this.names.task_instance = ti;
    }
  }

  lookup(name: string): unknown {
    return Object.hasOwn(this.names, name) ? this.hit(name, this.names[name]) : this.miss(name);
  }

  /** Renders `run` in passes until every variable and connection it asks for has been fetched. */
  async render(run: () => string): Promise<string> {
    for (let pass = 1; ; pass++) {
      this.last = null;
      let out = '';
      let failure: { error: unknown } | null = null;
      const outer = active;
      active = this;
      try {
        out = run();
      } catch (error) {
        failure = { error };
      } finally {
        active = outer;
      }
      const asked = [...this.pendingVars].map((k) => `var "${k}"`).concat([...this.pendingConns].map((id) => `conn "${id}"`))
        .concat([...this.pendingXComs.values()].map(([t, k]) => `xcom "${t}"/"${k}"`));
      if (!asked.length) {
        if (failure) throw failure.error;
        return out;
      }
      if (pass === MAX_PASSES) throw new RenderProblem(null, `it still asks for new variables or connections after ${MAX_PASSES} rounds of lookups (${asked.join(', ')}); a name computed from another lookup should not chain this deep`);
      await this.fetchPending();
    }
  }

  private hit(path: string, value: unknown): unknown {
    this.last = { path, missing: false, isNull: value === null };
    return this.wrap(value, path);
  }

  private miss(path: string): undefined {
    this.last = { path, missing: true, isNull: false };
    return undefined;
  }

  /** A recording view of a plain object or array: a missing key is noted by its dotted path. */
  private wrap(value: unknown, path: string): unknown {
    if ((!Array.isArray(value) && !isPlain(value)) || this.own.has(value)) return value;
    let view = this.wrapped.get(value);
    if (!view) {
      view = new Proxy(value, {
        get: (target, key) => {
          if (typeof key === 'symbol') return Reflect.get(target, key);
          if (key in target) return this.hit(childPath(path, key, Array.isArray(target)), Reflect.get(target, key));
          return PROBES.has(key) ? undefined : this.miss(childPath(path, key, Array.isArray(target)));
        },
      });
      this.wrapped.set(value, view);
      this.own.add(view);
    }
    return view;
  }

  private namespace(resolve: (key: string) => unknown): object {
    // Airflow's accessors also answer `var.value.get('key', 'fallback')` (or `default_var='fallback'`).
    const get = (key: unknown, ...rest: unknown[]) => {
      const last = rest.at(-1);
      const fallback = isPlain(last) && Object.hasOwn(last, '__keywords') ? Object.entries(last).find(([k]) => k !== '__keywords')?.[1] : rest[0];
      const value = resolve(String(key));
      return value === undefined ? fallback : value;
    };
    const ns = new Proxy(Object.create(null), {
      get: (_t, key) => (typeof key === 'symbol' || PROBES.has(key) ? undefined : key === 'get' ? get : resolve(key)),
    });
    this.own.add(ns);
    return ns;
  }

  private variable(key: string, json: boolean): unknown {
    const path = `var.${json ? 'json' : 'value'}.${key}`;
    if (!this.vars.has(key)) {
      this.pendingVars.add(key);
      return PENDING;
    }
    const raw = this.vars.get(key);
    if (raw === undefined) return this.miss(path);
    if (!json) return this.hit(path, raw);
    let parsed = this.parsed.get(key);
    if (!parsed) {
      try {
        parsed = { value: JSON.parse(raw) };
      } catch (e) {
        parsed = { error: (e as Error).message };
      }
      this.parsed.set(key, parsed);
    }
    if ('error' in parsed) throw new RenderProblem(null, `variable "${key}" is not valid JSON (${parsed.error}); read its raw text with var.value.${key}, or fix its value`);
    return this.hit(path, parsed.value);
  }

  private connection(id: string): unknown {
    if (!this.conns.has(id)) {
      this.pendingConns.add(id);
      return PENDING;
    }
    const conn = this.conns.get(id);
    return conn === undefined ? this.miss(`conn.${id}`) : this.hit(`conn.${id}`, conn);
  }

  private xcomPull(args: unknown[]): unknown {
    const kw = isPlain(args.at(-1)) && Object.hasOwn(args.at(-1) as object, '__keywords') ? (args.pop() as Record<string, unknown>) : {};
    const taskIds = kw.task_ids ?? args[0];
    const key = String(kw.key ?? args[1] ?? 'return_value');
    const mapIndex = Number(kw.map_indexes ?? args[2] ?? -1);
    if (!this.lookups.xcom) throw new RenderProblem(null, 'ti.xcom_pull needs a run to read from; render it for an existing run (updraft tasks render --run-id)');
    const one = (taskId: unknown) => {
      const id = `${String(taskId)}\u0000${key}\u0000${mapIndex}`;
      if (this.xcoms.has(id)) return this.xcoms.get(id);
      this.pendingXComs.set(id, [String(taskId), key, mapIndex]);
      return PENDING;
    };
    return Array.isArray(taskIds) ? taskIds.map(one) : one(taskIds);
  }

  private async fetchPending(): Promise<void> {
    const vars = [...this.pendingVars];
    const conns = [...this.pendingConns];
    const xcoms = [...this.pendingXComs];
    this.pendingVars.clear();
    this.pendingConns.clear();
    this.pendingXComs.clear();
    await Promise.all([
      ...xcoms.map(async ([id, [taskId, key, mapIndex]]) => { this.xcoms.set(id, await this.lookups.xcom!(taskId, key, mapIndex)); }),
      ...vars.map(async (key) => { this.vars.set(key, await this.lookups.variable(key)); }),
      ...conns.map(async (id) => {
        const conn = clonePlain(await this.lookups.connection(id)) as Record<string, unknown> | undefined;
        // Airflow templates read extras as `conn.X.extra_dejson.key`.
        if (conn && isPlain(conn.extra) && !('extra_dejson' in conn)) conn.extra_dejson = conn.extra;
        this.conns.set(id, conn);
      }),
    ]);
  }
}
