/**
 * The Connection model, Airflow's shape: a conn id, a type, host, schema, login, password,
 * port and a JSON object of extras. Validated by zod wherever a connection enters (the CLI,
 * a URI, a JSON document, a secrets backend); when its type is registered, its extras are
 * checked against that type's schema, and an unknown extra key is an error naming the known.
 */
import { z } from 'zod';
import { UpdraftError } from '../errors.ts';
import { formatZodIssues } from '../authoring/operator.ts';
import { connectionType } from './types.ts';

/** Airflow's conn id rule: 1-250 of letters, digits and `_ # ! ( ) - . : / \`. */
export const CONN_ID = /^[\w#!()\-.:/\\]{1,250}$/;

export class InvalidConnectionError extends UpdraftError {
  constructor(readonly where: string, detail: string) {
    super(`${where}: ${detail}`);
  }
}

const nullableText = z.string().nullable().default(null).transform((v) => (v === '' ? null : v));

export const connectionSchema = z.object({
  connId: z.string().regex(CONN_ID, 'conn ids use 1-250 letters, digits and _ # ! ( ) - . : / \\'),
  connType: z.string().regex(/^[a-z0-9_.+-]{1,100}$/i, 'connection types use letters, digits and _ . + -').transform((t) => t.replace(/-/g, '_')),
  description: nullableText,
  host: nullableText,
  schema: nullableText,
  login: nullableText,
  password: z.string().nullable().default(null),
  port: z.coerce.number().int().min(1).max(65535).nullable().default(null),
  extra: z.record(z.string(), z.unknown()).default({}),
}).strict();

export type ConnectionInput = z.input<typeof connectionSchema>;
export type Connection = Readonly<z.output<typeof connectionSchema>>;

/**
 * Validate a connection from anywhere. `where` says where it came from ("connections add",
 * "environment variable UPDRAFT_CONN_API"), for the error message.
 */
export function validateConnection(input: unknown, where: string): Connection {
  const parsed = connectionSchema.safeParse(input);
  if (!parsed.success) throw new InvalidConnectionError(where, formatZodIssues(parsed.error));
  const conn = parsed.data;
  const type = connectionType(conn.connType);
  if (!type) return Object.freeze(conn);
  const known = Object.keys(type.extraSchema.shape);
  const unknown = Object.keys(conn.extra).filter((k) => !known.includes(k));
  if (unknown.length) {
    throw new InvalidConnectionError(where, `unknown extra ${unknown.map((k) => `"${k}"`).join(', ')} for connection type "${type.type}"; known extras: ${known.join(', ') || '(none)'}`);
  }
  const extra = type.extraSchema.safeParse(conn.extra);
  if (!extra.success) throw new InvalidConnectionError(where, `extra of a "${type.type}" connection: ${formatZodIssues(extra.error)}`);
  return Object.freeze({ ...conn, connType: type.type, extra: extra.data as Record<string, unknown> });
}

/** The fields templates and JSON output use, in Airflow's snake_case plus our camelCase. */
export function connectionView(conn: Connection): Record<string, unknown> {
  return {
    conn_id: conn.connId, conn_type: conn.connType, connId: conn.connId, connType: conn.connType,
    description: conn.description, host: conn.host, schema: conn.schema, login: conn.login,
    password: conn.password, port: conn.port, extra: conn.extra, extra_dejson: conn.extra,
  };
}
