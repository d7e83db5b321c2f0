/**
 * The HTTP triggers. `http.HttpTrigger` makes one request, or walks every page of a paginated
 * one, inside ONE trigger run: one deferral and one resume however many pages (Airflow's
 * operator re-defers per page). `http.HttpSensorTrigger` polls until a declarative check holds.
 * Kwargs hold the conn id and the request, never credentials; the event is JSON (a bytes body
 * travels as base64), and a large one goes by reference through the XCom storage. onKill
 * aborts the request in flight.
 */
import { z } from 'zod';
import { BaseTrigger, TriggerEvent, registerTrigger } from 'updraft';
import { HttpHook, type HttpResponse, type QueryValue } from './hook.ts';
import { retryPolicySchema } from './retry.ts';
import { paginateSchema } from './paginators.ts';
import { responseCheckSchema, checkResponse } from './checks.ts';
import { sleep } from './rate-limit.ts';

const queryValue = z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.union([z.string(), z.number(), z.boolean()]))]);

const requestShape = {
  connId: z.string().min(1),
  endpoint: z.string(),
  method: z.string().min(1).default('GET').transform((m) => m.toUpperCase()),
  query: z.record(z.string(), queryValue).default({}),
  headers: z.record(z.string(), z.string()).default({}),
  json: z.unknown().optional(),
  data: z.union([z.string(), z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]))]).optional(),
  retry: retryPolicySchema.partial().optional(),
  timeoutMs: z.number().int().positive().optional(),
};

const httpTriggerSchema = z.object({
  ...requestShape,
  responseType: z.enum(['auto', 'json', 'text', 'bytes']).default('auto'),
  paginate: paginateSchema.optional(),
}).strict();

export type HttpTriggerKwargs = z.output<typeof httpTriggerSchema>;
export type HttpTriggerInput = z.input<typeof httpTriggerSchema>;

/** The JSON a response travels as; `encoding: 'base64'` when the body is bytes. */
export interface HttpEventResponse {
  status: number;
  headers: Record<string, string | string[]>;
  url: string;
  body: unknown;
  encoding?: 'base64';
}

/** The event: the last response's fields, plus every page's body when paginated. */
export interface HttpEvent extends HttpEventResponse {
  pages?: HttpEventResponse[];
}

export function toEventResponse(res: HttpResponse): HttpEventResponse {
  return Buffer.isBuffer(res.body)
    ? { status: res.status, headers: res.headers, url: res.url, body: res.body.toString('base64'), encoding: 'base64' }
    : { status: res.status, headers: res.headers, url: res.url, body: res.body };
}

export function fromEventResponse(res: HttpEventResponse): HttpResponse {
  return { status: res.status, headers: res.headers, url: res.url, body: res.encoding === 'base64' ? Buffer.from(String(res.body), 'base64') : res.body };
}

/** Kwargs are stored as JSON: leave out what was not given rather than storing `undefined`. */
function given<T extends Record<string, unknown>>(kwargs: T): T {
  return Object.fromEntries(Object.entries(kwargs).filter(([, v]) => v !== undefined)) as T;
}

abstract class KillableHttpTrigger<K extends Record<string, unknown>> extends BaseTrigger<K> {
  private readonly killed = new AbortController();

  protected async hook(connId: string): Promise<HttpHook> {
    const signal = AbortSignal.any([this.runtime.signal, this.killed.signal]);
    return HttpHook.create({ connection: (id) => this.runtime.connection(id), log: this.runtime.log, signal }, connId);
  }

  protected get signal(): AbortSignal {
    return AbortSignal.any([this.runtime.signal, this.killed.signal]);
  }

  override onKill(): void {
    this.killed.abort(new Error('the waiting task was killed'));
  }
}

export class HttpTrigger extends KillableHttpTrigger<HttpTriggerKwargs> {
  static readonly triggerName = 'http.HttpTrigger';
  static readonly kwargsSchema: z.ZodType<HttpTriggerKwargs> = httpTriggerSchema as z.ZodType<HttpTriggerKwargs>;

  constructor(kwargs: HttpTriggerInput) {
    super(given(httpTriggerSchema.parse(kwargs)));
  }

  async *run(): AsyncGenerator<TriggerEvent<HttpEvent>, void, void> {
    const k = this.kwargs;
    const hook = await this.hook(k.connId);
    const req = {
      method: k.method, query: k.query as Record<string, QueryValue>, headers: k.headers, json: k.json, data: k.data,
      retry: k.retry, timeoutMs: k.timeoutMs, responseType: k.responseType,
    };
    if (!k.paginate) {
      yield new TriggerEvent<HttpEvent>(toEventResponse(await hook.run(k.endpoint, req)));
      return;
    }
    const pages: HttpEventResponse[] = [];
    for await (const res of hook.paginate(k.endpoint, { ...req, ...k.paginate })) pages.push(toEventResponse(res));
    this.runtime.log.info('%s %s: %d page(s) fetched in this trigger run', k.method, k.endpoint, pages.length);
    yield new TriggerEvent<HttpEvent>({ ...pages[pages.length - 1], pages });
  }
}

const sensorTriggerSchema = z.object({
  ...requestShape,
  check: responseCheckSchema,
  /** Statuses that mean "not yet" (poke again) rather than an error. */
  notYetStatuses: z.array(z.number().int().min(100).max(599)).default([404]),
  pokeIntervalMs: z.number().int().min(100).default(60_000),
}).strict();

export type HttpSensorTriggerKwargs = z.output<typeof sensorTriggerSchema>;
export type HttpSensorTriggerInput = z.input<typeof sensorTriggerSchema>;

/** Pokes until `check` holds; each poke's errors go through the retry policy first. */
export class HttpSensorTrigger extends KillableHttpTrigger<HttpSensorTriggerKwargs> {
  static readonly triggerName = 'http.HttpSensorTrigger';
  static readonly kwargsSchema: z.ZodType<HttpSensorTriggerKwargs> = sensorTriggerSchema as z.ZodType<HttpSensorTriggerKwargs>;

  constructor(kwargs: HttpSensorTriggerInput) {
    super(given(sensorTriggerSchema.parse(kwargs)));
  }

  async *run(): AsyncGenerator<TriggerEvent<HttpEventResponse & { pokes: number }>, void, void> {
    const k = this.kwargs;
    const hook = await this.hook(k.connId);
    const accept = [...k.notYetStatuses, ...(k.check.status ?? [])];
    for (let pokes = 1; ; pokes++) {
      const res = await hook.run(k.endpoint, {
        method: k.method, query: k.query as Record<string, QueryValue>, headers: k.headers, json: k.json, data: k.data,
        retry: k.retry, timeoutMs: k.timeoutMs, acceptStatuses: accept,
      });
      if (!k.notYetStatuses.includes(res.status) || k.check.status?.includes(res.status)) {
        if (checkResponse(k.check, res)) {
          yield new TriggerEvent({ ...toEventResponse(res), pokes });
          return;
        }
      }
      this.runtime.log.info('%s %s: not yet (status %d, poke %d); next poke in %d ms', k.method, k.endpoint, res.status, pokes, k.pokeIntervalMs);
      await sleep(k.pokeIntervalMs, this.signal);
    }
  }
}

registerTrigger(HttpTrigger);
registerTrigger(HttpSensorTrigger);
