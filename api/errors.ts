/**
 * Errors of the web UI and REST API. Every error leaves the server in one JSON shape,
 * `{ "error": { "status", "code", "message", "detail"? } }`, with a message a person can act on.
 */
import { UpdraftError } from '../core/index.ts';

export class ApiError extends UpdraftError {
  constructor(readonly status: number, readonly code: string, message: string, readonly detail?: unknown) {
    super(message);
    this.name = 'ApiError';
  }
}

export const notFound = (what: string, hint = '') => new ApiError(404, 'not_found', `${what} does not exist${hint ? `; ${hint}` : ''}`);
export const forbidden = (message: string) => new ApiError(403, 'forbidden', message);
export const unauthorized = (message = 'log in first: POST /api/v1/auth/login with {"username","password"}, or send "Authorization: Bearer <token>"') => new ApiError(401, 'unauthorized', message);
export const invalid = (message: string, detail?: unknown) => new ApiError(422, 'invalid_request', message, detail);

export interface ErrorBody {
  error: { status: number; code: string; message: string; detail?: unknown };
}

export function errorBody(err: ApiError): ErrorBody {
  return { error: { status: err.status, code: err.code, message: err.message, ...(err.detail === undefined ? {} : { detail: err.detail }) } };
}
