/**
 * Connection URIs in Airflow's spelling: `type://login:password@host:port/schema?key=value`.
 * Updraft reads them from environment variables and secrets and writes them on export, so both
 * directions live here and agree: whatever formatConnectionUri writes, parseConnectionUri reads
 * back to the same fields.
 *
 * What a URI cannot say, and so does not round-trip:
 * - an empty string: a URI has no "present but empty" part, so '' reads back as null;
 * - connType 'postgresql', which reads back as 'postgres' (Airflow's alias). Types a scheme cannot
 *   spell exactly (capitals, '-', which reads back as '_') are refused when writing;
 * - port 0 and non-integer ports, which are refused when writing.
 *
 * Where Updraft is stricter or richer than Airflow, so that nothing is silently lost: repeated query
 * keys become arrays (Airflow keeps the last); `__extra__` must stand alone in the query; a raw '#',
 * a raw '@' after the host and malformed percent-encoding are errors; host case is kept (Airflow
 * lowercases). An IPv6 host is written and read as `[::1]`.
 */

import { isIPv6 } from 'node:net';
import { UpdraftError } from '../errors.ts';
import { findJsonProblem } from '../model/json-value.ts';

export interface ConnectionFields {
  connType: string;
  host: string | null;
  schema: string | null;
  login: string | null;
  password: string | null;
  port: number | null;
  extra: Record<string, unknown>;
}

export class ConnectionUriError extends UpdraftError {}

type Decode = (raw: string, part: string) => string;
type Bad = (problem: string, fix: string) => never;

const EXTRA_KEY = '__extra__';
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
const HOST_WITH_SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.+)$/s;
const CONN_TYPE = /^[a-z][a-z0-9_+.]*$/;
const SHAPE = 'type://[login[:password]@]host[:port][/schema][?key=value&...]';
const ENCODE_RESERVED = "percent-encode reserved characters in each part ('/' as %2F, '@' as %40, ':' as %3A, '?' as %3F, '#' as %23, '%' as %25)";

/** The URI for an error message: everything that might be a password becomes ***. */
function masked(uri: string): string {
  const start = SCHEME.exec(uri)?.[0].length ?? 0;
  const from = uri.indexOf(':', start + (SCHEME.exec(uri.slice(start))?.[0].length ?? 0));
  // The last '@' rather than the first: an unencoded '@' or '/' in a password must not leak either.
  const at = uri.lastIndexOf('@');
  return from >= 0 && at > from ? `${uri.slice(0, from + 1)}***${uri.slice(at)}` : uri;
}

function refuse(problem: string, fix: string): never {
  throw new ConnectionUriError(`cannot write connection as a URI: ${problem}; ${fix}`);
}

// Stricter than encodeURIComponent: Airflow's quote(safe='') also escapes !'()*.
function encode(text: string, part: string): string {
  try {
    return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  } catch {
    return refuse(`the ${part} contains an unpaired UTF-16 surrogate`, 'store the text as valid Unicode');
  }
}

export function parseConnectionUri(uri: string, where = 'connection URI'): ConnectionFields {
  // Env files and secret stores often end a value with a newline; written URIs never have edge whitespace.
  const text = uri.trim();
  const bad: Bad = (problem, fix) => {
    throw new ConnectionUriError(`${where}: ${problem} in "${masked(text)}"; ${fix}`);
  };
  const decode: Decode = (raw, part) => {
    try {
      return decodeURIComponent(raw);
    } catch {
      return bad(`the ${part} has malformed percent-encoding`, `write a literal '%' as %25, and ${ENCODE_RESERVED}`);
    }
  };
  const nonEmpty = (raw: string, part: string): string | null => (raw ? decode(raw, part) || null : null);

  const scheme = SCHEME.exec(text);
  if (!scheme) return bad('there is no connection type', `write the connection as ${SHAPE}`);
  if (text.includes('#')) bad(`there is a raw '#'`, `percent-encode '#' as %23`);
  let connType = scheme[1].toLowerCase().replace(/-/g, '_');
  if (connType === 'postgresql') connType = 'postgres';

  let rest = text.slice(scheme[0].length);
  const hostScheme = SCHEME.exec(rest);
  if (hostScheme) rest = rest.slice(hostScheme[0].length);
  const q = rest.indexOf('?');
  const beforeQuery = q < 0 ? rest : rest.slice(0, q);
  const slash = beforeQuery.indexOf('/');
  const authority = slash < 0 ? beforeQuery : beforeQuery.slice(0, slash);
  const path = slash < 0 ? '' : beforeQuery.slice(slash + 1);
  // Almost always a password with an unencoded '/', which would otherwise misparse silently.
  if (path.includes('@')) bad(`there is a raw '@' after the host`, ENCODE_RESERVED);

  const at = authority.lastIndexOf('@');
  let login: string | null = null;
  let password: string | null = null;
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(':');
    login = nonEmpty(colon < 0 ? userinfo : userinfo.slice(0, colon), 'login');
    password = colon < 0 ? null : nonEmpty(userinfo.slice(colon + 1), 'password');
  }

  const hostPort = authority.slice(at + 1);
  let hostText = hostPort;
  let portText = '';
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    const after = close < 0 ? '' : hostPort.slice(close + 1);
    if (close < 0 || (after && !after.startsWith(':'))) bad(`the IPv6 host is not of the form [address] or [address]:port`, 'bracket the address, e.g. [::1]:5432');
    hostText = hostPort.slice(1, close);
    portText = after.slice(1);
  } else if (hostPort.includes(':')) {
    hostText = hostPort.slice(0, hostPort.indexOf(':'));
    portText = hostPort.slice(hostPort.indexOf(':') + 1);
  }
  let port: number | null = null;
  if (portText) {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : 0;
    if (port < 1 || port > 65535) bad('the port is not a whole number from 1 to 65535', `fix the port, or if that is part of a password, ${ENCODE_RESERVED}`);
  }
  let host = nonEmpty(hostText, 'host');
  if (host && hostScheme) host = `${hostScheme[1]}://${host}`;

  const extra = q < 0 ? {} : parseQuery(rest.slice(q + 1), decode, bad);
  return { connType, host, schema: nonEmpty(path, 'schema'), login, password, port, extra };
}

function parseQuery(query: string, decode: Decode, bad: Bad): Record<string, unknown> {
  const values = new Map<string, string[]>();
  for (const pair of query.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const key = decode((eq < 0 ? pair : pair.slice(0, eq)).replace(/\+/g, ' '), 'query string');
    const value = eq < 0 ? '' : decode(pair.slice(eq + 1).replace(/\+/g, ' '), 'query string');
    values.set(key, [...(values.get(key) ?? []), value]);
  }
  const json = values.get(EXTRA_KEY);
  // fromEntries, not assignment, so a '__proto__' key stays an ordinary key.
  if (!json) return Object.fromEntries([...values].map(([k, v]) => [k, v.length === 1 ? v[0] : v]));
  if (values.size > 1 || json.length > 1) {
    bad(`${EXTRA_KEY} is combined with other query parameters`, `put every extra inside the ${EXTRA_KEY} JSON object`);
  }
  let extra: unknown;
  const fix = `give ${EXTRA_KEY} a URL-encoded JSON object, e.g. ${EXTRA_KEY}=%7B%22key%22%3A%22value%22%7D`;
  try {
    extra = JSON.parse(json[0]);
  } catch {
    bad(`${EXTRA_KEY} is not valid JSON`, fix);
  }
  if (typeof extra !== 'object' || extra === null || Array.isArray(extra)) bad(`${EXTRA_KEY} is JSON but not an object`, fix);
  return extra as Record<string, unknown>;
}

export function formatConnectionUri(conn: ConnectionFields): string {
  if (!CONN_TYPE.test(conn.connType)) {
    refuse(`connType "${conn.connType}" cannot be written as a URI scheme`, "use lowercase letters, digits, '_', '+' and '.', starting with a letter ('_' is written as '-')");
  }
  let uri = `${conn.connType.replace(/_/g, '-')}://`;
  let host = conn.host ?? '';
  const hostScheme = HOST_WITH_SCHEME.exec(host);
  if (hostScheme) {
    uri += `${hostScheme[1]}://`;
    host = hostScheme[2];
  }
  const hasUserinfo = !!conn.login || !!conn.password;
  if (hasUserinfo) uri += `${encode(conn.login ?? '', 'login')}${conn.password ? `:${encode(conn.password, 'password')}` : ''}@`;
  // A '%' would be an IPv6 zone, which needs its own escaping; the %3A form reads back the same.
  uri += isIPv6(host) && !host.includes('%') ? `[${host}]` : encode(host, 'host');
  if (conn.port !== null) {
    if (!Number.isInteger(conn.port) || conn.port < 1 || conn.port > 65535) {
      refuse(`port ${conn.port} is not a whole number from 1 to 65535`, 'fix the port, or set it to null');
    }
    // Airflow's spelling for a port with neither host nor login.
    uri += `${host || hasUserinfo ? '' : '@'}:${conn.port}`;
  }
  if (conn.schema) uri += `/${encode(conn.schema, 'schema')}`;
  const query = formatExtra(conn.extra);
  return query ? `${uri}?${query}` : uri;
}

function formatExtra(extra: Record<string, unknown>): string {
  if (typeof extra !== 'object' || extra === null || Array.isArray(extra)) refuse('extra is not an object', 'use {} for no extras');
  const problem = findJsonProblem(extra);
  if (problem) refuse(`extra holds ${problem.what} at ${problem.at}`, 'keep extras to JSON objects, arrays, strings, finite numbers, booleans and null');
  const entries = Object.entries(extra);
  if (!entries.length) return '';
  // One-element arrays would read back as plain strings, so they go as JSON.
  const isQueryValue = (v: unknown): boolean => typeof v === 'string' || (Array.isArray(v) && v.length > 1 && v.every((s) => typeof s === 'string'));
  if (entries.every(([k, v]) => k !== EXTRA_KEY && isQueryValue(v))) {
    return entries
      .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((s) => `${encode(k, 'extra key')}=${encode(s as string, 'extra value')}`))
      .join('&');
  }
  return `${EXTRA_KEY}=${encode(JSON.stringify(extra), 'extra')}`;
}
