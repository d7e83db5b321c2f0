/**
 * Updraft's HTTP provider (`updraft/providers/http`), on undici: the `http` connection type,
 * HttpHook, HttpOperator (async or deferrable), HttpSensor, and the triggers
 * `http.HttpTrigger` and `http.HttpSensorTrigger`. Importing it registers all of them.
 */
import { registerHttpConnectionType } from './connection.ts';
import { testHttpConnection } from './connection-test.ts';

registerHttpConnectionType(testHttpConnection);

export { HTTP_DEFAULT_CONN_ID, httpExtraSchema, baseUrlOf, urlFor, type HttpExtra } from './connection.ts';
export { HttpHook, loggableUrl, DEFAULT_TIMEOUT_MS, DEFAULT_MAX_RESPONSE_SIZE, type HttpRequestOptions, type HttpResponse, type HookSource, type PaginateCall, type QueryValue, type ResponseType } from './hook.ts';
export { HttpOperator, deferredRequest, type HttpOperatorOptions, type DeferredRequest, type ResponseOrPages } from './operators.ts';
export { HttpSensor, type HttpSensorOptions } from './sensors.ts';
export { HttpTrigger, HttpSensorTrigger, toEventResponse, fromEventResponse, type HttpEvent, type HttpEventResponse, type HttpTriggerKwargs, type HttpSensorTriggerKwargs } from './triggers.ts';
export { registerPaginator, nextLink, paginatorFor, type Paginator, type PaginationSpec, type PaginateOptions, type PageRequest, type PageResponse } from './paginators.ts';
export { checkResponse, valueAt, type ResponseCheck } from './checks.ts';
export { retryPolicySchema, retryDelayMs, parseRetryAfter, type RetryPolicy, type RetryPolicyInput } from './retry.ts';
export { TokenBucket, type RateLimit } from './rate-limit.ts';
export { closeHttpPools } from './dispatchers.ts';
export * from './errors.ts';
