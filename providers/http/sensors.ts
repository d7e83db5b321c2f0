/**
 * HttpSensor: pokes an endpoint until the response passes. `responseCheck` (a function) runs
 * on the worker, so a sensor that uses one pokes from the worker's event loop. With
 * `deferrable: true` the wait moves to the triggerer as an HttpSensorTrigger, and only a
 * declarative `check` can go there (a status set, a JSON path equal to a value, a substring).
 * A 404 means "not yet" (`notYetStatuses` to change it); other errors go through the retry
 * policy, and the sensor fails when it runs out.
 */
import { BaseSensorOperator, baseOptions, DagDefinitionError, SensorTimeout, type Context, type SensorOptions } from 'updraft';
import { HttpHook, type HttpResponse, type QueryValue } from './hook.ts';
import { HTTP_DEFAULT_CONN_ID } from './connection.ts';
import { HttpSensorTrigger, fromEventResponse, type HttpEventResponse } from './triggers.ts';
import { checkResponse, responseCheckSchema, type ResponseCheck } from './checks.ts';
import { sleep } from './rate-limit.ts';
import type { RetryPolicyInput } from './retry.ts';

export interface HttpSensorOptions extends SensorOptions {
  connId?: string;
  endpoint: string;
  method?: string;
  query?: Record<string, QueryValue>;
  headers?: Record<string, string>;
  data?: string | Record<string, string | number | boolean>;
  /** A function check: the sensor pokes from the worker. */
  responseCheck?: (response: HttpResponse) => boolean | Promise<boolean>;
  /** A declarative check: works deferred too. */
  check?: ResponseCheck;
  notYetStatuses?: number[];
  retry?: RetryPolicyInput;
  deferrable?: boolean;
}

const OWN_KEYS = ['connId', 'endpoint', 'method', 'query', 'headers', 'data', 'responseCheck', 'check', 'notYetStatuses', 'retry', 'deferrable'] as const;

export class HttpSensor extends BaseSensorOperator {
  static override templateFields = ['endpoint', 'query', 'headers', 'data'];

  connId: string;
  endpoint: string;
  method: string;
  query: Record<string, QueryValue>;
  headers: Record<string, string>;
  data: HttpSensorOptions['data'];
  readonly responseCheck?: HttpSensorOptions['responseCheck'];
  readonly check?: ResponseCheck;
  readonly notYetStatuses: number[];
  readonly retry?: RetryPolicyInput;
  readonly deferrable: boolean;

  constructor(options: HttpSensorOptions) {
    super(baseOptions<HttpSensorOptions, SensorOptions>(options, OWN_KEYS));
    this.connId = options.connId ?? HTTP_DEFAULT_CONN_ID;
    this.endpoint = options.endpoint;
    this.method = (options.method ?? 'GET').toUpperCase();
    this.query = options.query ?? {};
    this.headers = options.headers ?? {};
    this.data = options.data;
    this.responseCheck = options.responseCheck;
    this.notYetStatuses = options.notYetStatuses ?? [404];
    this.retry = options.retry;
    this.deferrable = options.deferrable ?? false;
    if (options.check !== undefined) {
      const parsed = responseCheckSchema.safeParse(options.check);
      if (!parsed.success) throw this.invalid(`check: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
      this.check = parsed.data;
    }
    if (this.responseCheck && this.check) throw this.invalid('give either responseCheck (a function) or check (declarative), not both');
    if (this.deferrable && this.responseCheck) {
      throw new DagDefinitionError(this.dagId, 'a deferrable HttpSensor checks responses in the triggerer, where functions cannot go: '
        + 'replace responseCheck with a declarative check ({ status: [200] }, { jsonPath: "state", equals: "done" } or { contains: "ready" }), '
        + 'or set deferrable: false to poke from the worker', this.taskId);
    }
  }

  async execute(ctx: Context): Promise<unknown> {
    const check = this.check ?? { status: [200, 201, 202, 203, 204] };
    if (this.deferrable) {
      return this.deferTo(new HttpSensorTrigger({
        connId: this.connId, endpoint: this.endpoint, method: this.method, query: this.query as never, headers: this.headers, data: this.data,
        retry: this.retry, check, notYetStatuses: this.notYetStatuses, pokeIntervalMs: this.pokeInterval,
      }));
    }
    const hook = await HttpHook.create(ctx, this.connId);
    const deadline = Date.now() + this.timeout;
    for (let poke = 1; ; poke++) {
      const res = await hook.run(this.endpoint, {
        method: this.method, query: this.query, headers: this.headers, data: this.data, retry: this.retry, signal: ctx.signal,
        acceptStatuses: [...this.notYetStatuses, ...(check.status ?? [])],
      });
      const ready = !this.notYetStatuses.includes(res.status) && (this.responseCheck ? await this.responseCheck(res) : checkResponse(check, res));
      if (ready) return res.body;
      if (Date.now() + this.pokeInterval > deadline) {
        const error = new SensorTimeout(`sensor "${this.taskId}" of DAG "${this.dagId}" timed out after ${poke} poke(s) of ${this.method} ${this.endpoint}`);
        if (this.softFail) throw this.skipped('it timed out', error);
        throw error;
      }
      ctx.log.info('not yet (status %d, poke %d); next poke in %d ms', res.status, poke, this.pokeInterval);
      await sleep(this.pokeInterval, ctx.signal);
    }
  }

  executeComplete(_ctx: Context, event: HttpEventResponse & { pokes: number }): unknown {
    return fromEventResponse(event).body;
  }
}
