/** HTTP pieces shared by the emulator's routes: API errors, format options, multipart bodies. */
import type { TimestampFormat } from './values.ts';

/** A request the API refuses: the HTTP status and BigQuery's error reason. */
export class HttpError extends Error {
  constructor(readonly code: number, message: string, readonly reason: string) {
    super(message);
  }
}

export const STATUS_NAMES: Record<number, string> = { 400: 'INVALID_ARGUMENT', 404: 'NOT_FOUND', 409: 'ALREADY_EXISTS', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' };

/** How a request asks for TIMESTAMP cells (`formatOptions.*` query parameters). */
export function timestampFormat(q: URLSearchParams): TimestampFormat {
  const format = q.get('formatOptions.timestampOutputFormat');
  if (format === 'ISO8601_STRING') return 'ISO8601_STRING';
  return q.get('formatOptions.useInt64Timestamp') === 'true' || format === 'INT64' ? 'INT64' : 'FLOAT';
}

/** The parts of a multipart/related body, headers stripped. */
export function splitMultipart(raw: Buffer, boundary: string): Buffer[] {
  const marker = Buffer.from(`--${boundary}`);
  const parts: Buffer[] = [];
  let at = raw.indexOf(marker);
  while (at >= 0) {
    const start = at + marker.length;
    if (raw.subarray(start, start + 2).toString() === '--') break;
    const next = raw.indexOf(marker, start);
    if (next < 0) break;
    const part = raw.subarray(start, next);
    const headerEnd = part.indexOf('\r\n\r\n');
    let content = headerEnd >= 0 ? part.subarray(headerEnd + 4) : part;
    if (content.subarray(-2).toString() === '\r\n') content = content.subarray(0, -2);
    parts.push(content);
    at = next;
  }
  return parts;
}
