/**
 * SftpSensor: waits for `path` to exist, or for files under `path` that match `pattern` (and
 * are newer than `newerThan`). Without `deferrable` it pokes from the worker's event loop;
 * with `deferrable: true` the wait moves to the triggerer (`sftp.SftpTrigger`, on the
 * triggerer's shared pool). The optional function `check` runs where the task runs, with the
 * matched files: on every poke, or on resume; when it says "not yet" a deferred sensor waits
 * again. The task's return value is the list of matched files.
 */
import { BaseSensorOperator, SensorTimeout, baseOptions, type Context, type SensorOptions } from 'updraft';
import { SftpHook, type SftpFile } from './hook.ts';
import { SFTP_DEFAULT_CONN_ID } from './connection.ts';
import { SftpTrigger, pollSftp, sleep, type SftpEvent } from './triggers.ts';

export interface SftpSensorOptions extends SensorOptions {
  connId?: string;
  path: string;
  pattern?: string;
  /** Only files modified after this moment count (ISO 8601, a Date, or a template such as `{{ data_interval_start }}`). */
  newerThan?: string | Date;
  /** Runs with the matched files; false means "not yet". */
  check?: (files: SftpFile[]) => boolean | Promise<boolean>;
  deferrable?: boolean;
}

const OWN_KEYS = ['connId', 'path', 'pattern', 'newerThan', 'check', 'deferrable'];

export class SftpSensor extends BaseSensorOperator {
  static override templateFields = ['path', 'pattern', 'newerThan'];

  connId: string;
  path: string;
  pattern?: string;
  newerThan?: string;
  readonly check?: SftpSensorOptions['check'];
  readonly deferrable: boolean;

  constructor(options: SftpSensorOptions) {
    super(baseOptions<SftpSensorOptions, SensorOptions>(options, OWN_KEYS));
    this.connId = options.connId ?? SFTP_DEFAULT_CONN_ID;
    this.path = options.path;
    this.pattern = options.pattern;
    this.newerThan = options.newerThan instanceof Date ? options.newerThan.toISOString() : options.newerThan;
    this.check = options.check;
    this.deferrable = options.deferrable ?? false;
    if (!this.path) throw this.invalid('path is required');
  }

  private newerThanIso(): string | undefined {
    if (!this.newerThan) return undefined;
    const ms = Date.parse(this.newerThan);
    if (Number.isNaN(ms)) throw this.invalid(`newerThan "${this.newerThan}" is not a date; give an ISO 8601 moment`);
    return new Date(ms).toISOString();
  }

  private trigger(firstPokeDelayMs = 0): SftpTrigger {
    return new SftpTrigger({
      connId: this.connId, path: this.path, pattern: this.pattern, newerThan: this.newerThanIso(),
      pokeIntervalMs: Math.max(100, this.pokeInterval), firstPokeDelayMs,
    });
  }

  async execute(ctx: Context): Promise<SftpFile[]> {
    if (this.deferrable) return this.deferTo(this.trigger());
    const hook = await SftpHook.create(ctx, this.connId);
    const deadline = Date.now() + this.timeout;
    const k = { path: this.path, pattern: this.pattern, newerThan: this.newerThanIso() };
    for (let poke = 1; ; poke++) {
      const files = await pollSftp(hook, k, ctx.signal);
      if (files.length && (!this.check || await this.check(files))) return files;
      if (Date.now() + this.pokeInterval > deadline) {
        const error = new SensorTimeout(`sensor "${this.taskId}" of DAG "${this.dagId}" timed out after ${poke} poke(s) of ${this.pattern ? `${this.path}/${this.pattern}` : this.path}`);
        if (this.softFail) throw this.skipped('it timed out', error);
        throw error;
      }
      ctx.log.info('%s (poke %d); next poke in %d ms', files.length ? `${files.length} file(s) matched, check said not yet` : 'nothing yet', poke, this.pokeInterval);
      await sleep(this.pokeInterval, ctx.signal);
    }
  }

  async executeComplete(ctx: Context, event: SftpEvent): Promise<SftpFile[]> {
    if (this.check && !(await this.check(event.files))) {
      ctx.log.info('%d file(s) matched but the check said not yet; waiting again', event.files.length);
      return this.deferTo(this.trigger(Math.max(100, this.pokeInterval)));
    }
    return event.files;
  }
}
