/**
 * `modules.datetime` for dbt templates: the parts of Python's datetime that models use
 * (`datetime.now()`, `utcnow()`, `date.today()`, `timedelta(days=…)`, `strftime`, `isoformat`).
 * Times are UTC.
 */
import { splitArgs } from './jinja.ts';

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

export class PyDateTime {
  constructor(readonly ms: number, readonly dateOnly = false) {}
  private get d(): Date { return new Date(this.ms); }
  get year(): number { return this.d.getUTCFullYear(); }
  get month(): number { return this.d.getUTCMonth() + 1; }
  get day(): number { return this.d.getUTCDate(); }
  get hour(): number { return this.d.getUTCHours(); }
  get minute(): number { return this.d.getUTCMinutes(); }
  get second(): number { return this.d.getUTCSeconds(); }
  strftime(format: string): string {
    const d = this.d;
    const map: Record<string, string> = {
      Y: String(d.getUTCFullYear()), m: pad(d.getUTCMonth() + 1), d: pad(d.getUTCDate()), H: pad(d.getUTCHours()),
      M: pad(d.getUTCMinutes()), S: pad(d.getUTCSeconds()), f: pad(d.getUTCMilliseconds() * 1000, 6), y: pad(d.getUTCFullYear() % 100),
      j: pad(Math.floor((this.ms - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1, 3), '%': '%',
    };
    return format.replace(/%(.)/g, (all, c: string) => map[c] ?? all);
  }
  isoformat(): string {
    return this.dateOnly ? this.strftime('%Y-%m-%d') : this.d.toISOString().replace('Z', '+00:00');
  }
  date(): PyDateTime { return new PyDateTime(Date.UTC(this.year, this.month - 1, this.day), true); }
  add(delta: TimeDelta): PyDateTime { return new PyDateTime(this.ms + delta.ms, this.dateOnly); }
  toString(): string { return this.dateOnly ? this.isoformat() : this.strftime('%Y-%m-%d %H:%M:%S.%f+00:00'); }
}

export class TimeDelta {
  constructor(readonly ms: number) {}
  total_seconds(): number { return this.ms / 1000; }
}

export const datetimeModule = {
  fromDate: (d: Date) => new PyDateTime(d.getTime()),
  datetime: Object.assign((...args: number[]) => new PyDateTime(Date.UTC(args[0], (args[1] ?? 1) - 1, args[2] ?? 1, args[3] ?? 0, args[4] ?? 0, args[5] ?? 0)), {
    now: () => new PyDateTime(Date.now()),
    utcnow: () => new PyDateTime(Date.now()),
    strptime: (text: string) => new PyDateTime(Date.parse(text.includes('T') || text.includes(' ') ? text.replace(' ', 'T') + (/[zZ+]/.test(text) ? '' : 'Z') : `${text}T00:00:00Z`)),
  }),
  date: Object.assign((y: number, m: number, d: number) => new PyDateTime(Date.UTC(y, m - 1, d), true), {
    today: () => new PyDateTime(Date.now()).date(),
  }),
  timedelta: (...raw: unknown[]) => {
    const { positional, kwargs } = splitArgs(raw);
    const n = (k: string, i: number) => Number(kwargs[k] ?? positional[i] ?? 0);
    return new TimeDelta((((n('days', 0) * 24 + n('hours', 3)) * 60 + n('minutes', 4)) * 60 + n('seconds', 1)) * 1000 + n('milliseconds', 2));
  },
};
