/**
 * HttpOperator. `deferrable: false` (the default) runs the request on the worker's event loop,
 * beside other async tasks: the choice for many short calls. `deferrable: true` defers at once
 * to an HttpTrigger, which makes the request, its retries and every page inside one trigger
 * run, and the task resumes once. `responseCheck` and `responseFilter` are functions, so they
 * run where the task runs: after the request, or on resume in executeComplete. Paging in a
 * trigger uses a declarative `paginate` spec (or a registered paginator name).
 *
 * The return value (the `return_value` XCom) is the body, or the list of page bodies when
 * paginated, or whatever responseFilter returns.
 */
import { BaseOperator, baseOptions, DagDefinitionError, type Context, type TaskOptions } from 'updraft';
import { HttpHook, type HttpResponse, type QueryValue, type ResponseType } from './hook.ts';
import { HTTP_DEFAULT_CONN_ID } from './connection.ts';
import { HttpTrigger, fromEventResponse, type HttpEvent, type HttpTriggerInput } from './triggers.ts';
import { HttpResponseCheckFailed } from './errors.ts';
import type { RetryPolicyInput } from './retry.ts';
import type { PaginateOptions } from './paginators.ts';

export type ResponseOrPages = HttpResponse | HttpResponse[];

export interface HttpOperatorOptions extends TaskOptions {
  connId?: string;
  endpoint: string;
  method?: string;
  data?: string | Record<string, string | number | boolean>;
  json?: unknown;
  headers?: Record<string, string>;
  query?: Record<string, QueryValue>;
  /** Fail the task when this returns false (given the response, or every page's). */
  responseCheck?: (response: ResponseOrPages) => boolean | Promise<boolean>;
  /** What to return instead of the body (given the response, or every page's). */
  responseFilter?: (response: ResponseOrPages) => unknown;
  /** Page through the endpoint: a built-in or registered style, plain data so a trigger can carry it. */
  paginate?: PaginateOptions;
  logResponse?: boolean;
  responseType?: ResponseType;
  retry?: RetryPolicyInput;
  timeoutMs?: number;
  deferrable?: boolean;
}

const OWN_KEYS = ['connId', 'endpoint', 'method', 'data', 'json', 'headers', 'query', 'responseCheck', 'responseFilter', 'paginate',
  'logResponse', 'responseType', 'retry', 'timeoutMs', 'deferrable'] as const;

export class HttpOperator extends BaseOperator {
  static override templateFields = ['endpoint', 'data', 'json', 'headers', 'query'];
  static override templateExt = ['.json'];

  connId: string;
  endpoint: string;
  method: string;
  data: HttpOperatorOptions['data'];
  json: unknown;
  headers: Record<string, string>;
  query: Record<string, QueryValue>;
  readonly responseCheck?: HttpOperatorOptions['responseCheck'];
  readonly responseFilter?: HttpOperatorOptions['responseFilter'];
  readonly paginate?: PaginateOptions;
  readonly logResponse: boolean;
  readonly responseType: ResponseType;
  readonly retry?: RetryPolicyInput;
  readonly timeoutMs?: number;
  readonly deferrable: boolean;

  constructor(options: HttpOperatorOptions) {
    super(baseOptions(options, OWN_KEYS));
    this.connId = options.connId ?? HTTP_DEFAULT_CONN_ID;
    this.endpoint = options.endpoint;
    this.method = (options.method ?? 'GET').toUpperCase();
    this.data = options.data;
    this.json = options.json;
    this.headers = options.headers ?? {};
    this.query = options.query ?? {};
    this.responseCheck = options.responseCheck;
    this.responseFilter = options.responseFilter;
    this.paginate = options.paginate;
    this.logResponse = options.logResponse ?? false;
    this.responseType = options.responseType ?? 'auto';
    this.retry = options.retry;
    this.timeoutMs = options.timeoutMs;
    this.deferrable = options.deferrable ?? false;
    if (this.deferrable && this.paginate && typeof this.paginate !== 'object') {
      throw new DagDefinitionError(this.dagId, 'a deferrable HttpOperator pages with a declarative `paginate` spec; functions cannot travel into a trigger', this.taskId);
    }
  }

  async execute(ctx: Context): Promise<unknown> {
    if (this.deferrable) {
      return this.defer({
        trigger: new HttpTrigger({
          connId: this.connId, endpoint: this.endpoint, method: this.method, query: this.query as never, headers: this.headers,
          json: this.json, data: this.data, retry: this.retry, timeoutMs: this.timeoutMs, responseType: this.responseType,
          paginate: this.paginate as never,
        }),
        method: 'executeComplete',
      });
    }
    const hook = await HttpHook.create(ctx, this.connId);
    const req = { method: this.method, query: this.query, headers: this.headers, json: this.json, data: this.data, retry: this.retry, timeoutMs: this.timeoutMs, responseType: this.responseType, signal: ctx.signal };
    if (!this.paginate) return this.finish(ctx, await hook.run(this.endpoint, req));
    const pages: HttpResponse[] = [];
    for await (const page of hook.paginate(this.endpoint, { ...req, ...this.paginate })) pages.push(page);
    return this.finish(ctx, pages);
  }

  /** Resumed once, with the response (and every page) the trigger fetched. */
  async executeComplete(ctx: Context, event: HttpEvent): Promise<unknown> {
    return this.finish(ctx, event.pages ? event.pages.map(fromEventResponse) : fromEventResponse(event));
  }

  private async finish(ctx: Context, result: ResponseOrPages): Promise<unknown> {
    if (this.logResponse) {
      for (const r of Array.isArray(result) ? result : [result]) ctx.log.info('response %d from %s: %s', r.status, r.url, Buffer.isBuffer(r.body) ? `${r.body.length} bytes` : typeof r.body === 'string' ? r.body : JSON.stringify(r.body));
    }
    if (this.responseCheck && !(await this.responseCheck(result))) {
      throw new HttpResponseCheckFailed(`task "${this.taskId}": responseCheck returned false for ${this.method} ${this.endpoint}${Array.isArray(result) ? ` (${result.length} pages)` : ` (status ${result.status})`}`);
    }
    if (this.responseFilter) return this.responseFilter(result);
    return Array.isArray(result) ? result.map(storableBody) : storableBody(result);
  }
}

/** A body as an XCom can hold it: bytes become base64 text. */
const storableBody = (r: HttpResponse) => (Buffer.isBuffer(r.body) ? r.body.toString('base64') : r.body);

export interface DeferredRequest extends Omit<HttpTriggerInput, 'connId' | 'endpoint'> {
  connId?: string;
}

/**
 * For function tasks (mapped ones included): the first run defers to an HttpTrigger; the
 * resumed run, which starts the function again, gets the response (the last page's, with
 * `pages` when paginated). Call it once per task.
 */
export function deferredRequest(ctx: Context, endpoint: string, request: DeferredRequest = {}): HttpResponse & { pages?: HttpResponse[] } {
  const event = ctx.event as HttpEvent | undefined;
  if (event === undefined) {
    return ctx.defer({ trigger: new HttpTrigger({ ...request, connId: request.connId ?? HTTP_DEFAULT_CONN_ID, endpoint }) });
  }
  return { ...fromEventResponse(event), ...(event.pages ? { pages: event.pages.map(fromEventResponse) } : {}) };
}
