/**
 * Errors of the HTTP provider. Each speaks HTTP's language: the method, the URL (credentials
 * masked by the process masker wherever the message is logged or stored), the status and a
 * short piece of the body, so a failed task says what the server answered.
 */
import { UpdraftError } from 'updraft';

export class HttpError extends UpdraftError {}

/** The server answered with a status the call does not accept. */
export class HttpStatusError extends HttpError {
  constructor(readonly method: string, readonly url: string, readonly status: number, readonly bodySnippet: string, readonly attempts: number) {
    super(`${method} ${url} answered ${status}${bodySnippet ? `: ${bodySnippet}` : ''}${attempts > 1 ? ` (after ${attempts} attempts)` : ''}`);
  }
}

/** The request never got an answer: refused, reset, timed out. */
export class HttpRequestError extends HttpError {
  constructor(readonly method: string, readonly url: string, readonly reason: string, readonly attempts: number, options?: { cause?: unknown }) {
    super(`${method} ${url} failed: ${reason}${attempts > 1 ? ` (after ${attempts} attempts)` : ''}`, options);
  }
}

/** A body larger than maxResponseSize; the rest of it was discarded. */
export class HttpResponseTooLarge extends HttpError {
  constructor(readonly url: string, readonly limit: number) {
    super(`${url}: the response body is larger than maxResponseSize (${limit} bytes); raise maxResponseSize or page through it`);
  }
}

/** responseCheck returned false (the task's retries apply, as in Airflow). */
export class HttpResponseCheckFailed extends HttpError {}

/** A paginator or check named in a trigger's kwargs that this process does not know. */
export class UnknownPaginatorError extends HttpError {}
