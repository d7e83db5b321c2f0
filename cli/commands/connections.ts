/**
 * `updraft connections ...` and `updraft variables ...`. Writes go to the metadata database,
 * sealed; reads go through every source in order, as tasks see them. Passwords and sensitive
 * extras print as *** unless --show-secrets.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import {
  UpdraftError, validateConnection, connectionType, connectionTypes, formatConnectionUri, toConnection, masker, envConnName, isSensitiveKey,
  type Connection, type RawConnection,
} from '../../core/index.ts';
import { openEnv, out, printJson, table, type CliEnv } from '../env.ts';
import { UsageError } from '../errors.ts';

export interface ConnectionArgs {
  uri?: string;
  doc?: string;
  type?: string;
  host?: string;
  port?: string;
  login?: string;
  password?: string;
  schema?: string;
  extra?: string;
  description?: string;
}

async function withEnv<T>(fn: (env: CliEnv) => Promise<T>): Promise<T> {
  const env = await openEnv({ migrate: true });
  try {
    return await fn(env);
  } finally {
    await env.database.close();
  }
}

function parseJsonArg(text: string, flag: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${flag} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The connection the add command describes, validated against its type. */
export function connectionFromArgs(connId: string, a: ConnectionArgs): Connection {
  const where = `connections add ${connId}`;
  const ways = [a.uri !== undefined, a.doc !== undefined, a.type !== undefined].filter(Boolean).length;
  if (ways !== 1) throw new UsageError(`${where}: give exactly one of --uri URI, --json JSON or --type TYPE (with --host, --port, --login, --password, --schema, --extra)`);
  let conn: Connection;
  if (a.uri !== undefined) conn = toConnection(a.uri, connId, where);
  else if (a.doc !== undefined) conn = toConnection(parseJsonArg(a.doc, '--json') as Record<string, unknown>, connId, where);
  else {
    conn = validateConnection({
      connId, connType: a.type, host: a.host ?? null, schema: a.schema ?? null, login: a.login ?? null, password: a.password ?? null,
      port: a.port ?? null, extra: a.extra === undefined ? {} : parseJsonArg(a.extra, '--extra'),
    }, where);
  }
  return a.description === undefined ? conn : validateConnection({ ...conn, description: a.description }, where);
}

/** A connection for printing: secrets as *** unless asked for. */
function shown(conn: Connection, showSecrets: boolean): Record<string, unknown> {
  if (showSecrets) return { ...conn };
  return { ...conn, password: conn.password === null ? null : '***', extra: masker.maskValue(maskSensitive(conn.extra)) };
}

function maskSensitive(extra: Record<string, unknown>): Record<string, unknown> {
  masker.addFrom(extra);
  return extra;
}

export async function connectionsAdd(connId: string, a: ConnectionArgs, replace: boolean, json: boolean): Promise<void> {
  const conn = connectionFromArgs(connId, a);
  await withEnv(async ({ secrets }) => {
    const written = await secrets.store.putConnection(conn, replace);
    if (!written) throw new UpdraftError(`connection "${connId}" already exists; pass --replace to overwrite it, or \`updraft connections delete ${connId}\` first`);
    if (json) printJson({ added: connId, connType: conn.connType });
    else out(`added connection ${connId} (${conn.connType})\n`);
  });
}

export async function connectionsGet(connId: string, asUri: boolean, showSecrets: boolean, json: boolean): Promise<void> {
  await withEnv(async ({ secrets }) => {
    const conn = await secrets.secrets.connection(connId);
    const uri = formatConnectionUri(conn.password === null || showSecrets ? conn : { ...conn, password: 'MASKED' }).replace(':MASKED@', ':***@');
    // A URI asked for with its secrets is printed as is; the masker would hide what was asked for.
    const print = (text: string) => (showSecrets ? process.stdout.write(text) : out(text));
    if (json) print(`${JSON.stringify(asUri ? { connId, uri } : shown(conn, showSecrets))}\n`);
    else if (asUri) print(`${uri}\n`);
    else print(`${Object.entries(shown(conn, showSecrets)).map(([k, v]) => `${k}: ${v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : v}`).join('\n')}\n`);
  });
}

export async function connectionsList(json: boolean): Promise<void> {
  await withEnv(async ({ secrets }) => {
    const rows: Record<string, unknown>[] = (await secrets.store.listConnections()).map((c) => ({ ...shown(c, false), source: 'metadata database' }));
    const inDb = new Set(rows.map((r) => r.connId));
    // Environment connections are listed too, so nobody wonders where one comes from.
    for (const [name, value] of Object.entries(process.env)) {
      if (!name.startsWith('UPDRAFT_CONN_') || !value) continue;
      const connId = name.slice('UPDRAFT_CONN_'.length).toLowerCase();
      if (inDb.has(connId)) continue;
      try {
        rows.push({ ...shown(toConnection(value, connId, `environment variable ${name}`), false), source: `environment (${name})` });
      } catch (err) {
        rows.push({ connId, connType: '?', source: `environment (${name}): ${(err as Error).message}` });
      }
    }
    if (json) printJson(rows);
    else out(`${table(rows, ['connId', 'connType', 'host', 'port', 'login', 'schema', 'source'])}\n`);
  });
}

export async function connectionsDelete(connId: string, json: boolean): Promise<void> {
  await withEnv(async ({ secrets }) => {
    const n = await secrets.store.deleteConnections([connId]);
    if (!n) {
      const hint = process.env[envConnName(connId)] ? `; it is defined by ${envConnName(connId)} in the environment` : '';
      throw new UpdraftError(`no connection "${connId}" in the metadata database${hint}`);
    }
    if (json) printJson({ deleted: connId });
    else out(`deleted connection ${connId}\n`);
  });
}

/** Writes every database connection, secrets included (the file is created 0600). */
export async function connectionsExport(file: string, json: boolean): Promise<void> {
  await withEnv(async ({ secrets }) => {
    const conns = await secrets.store.listConnections();
    const doc = Object.fromEntries(conns.map(({ connId, ...rest }) => [connId, rest]));
    writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o600 });
    if (json) printJson({ exported: conns.length, file });
    else out(`exported ${conns.length} connection(s) to ${file}\n`);
  });
}

function readDoc(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const doc = /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
    if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('expected an object keyed by id');
    return doc as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`${file} is not a valid document: ${(err as Error).message}`);
  }
}

/** Every entry is validated before any is written: one bad entry writes nothing. */
export async function connectionsImport(file: string, replace: boolean, json: boolean): Promise<void> {
  const doc = readDoc(file);
  const problems: string[] = [];
  const conns: Connection[] = [];
  for (const [connId, raw] of Object.entries(doc)) {
    try {
      conns.push(toConnection(raw as RawConnection, connId, `${file}: connection "${connId}"`));
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (problems.length) throw new UpdraftError(`nothing imported; ${problems.length} invalid connection(s):\n  ${problems.join('\n  ')}`);
  await withEnv(async ({ secrets }) => {
    const skipped: string[] = [];
    for (const c of conns) if (!await secrets.store.putConnection(c, replace)) skipped.push(c.connId);
    if (json) printJson({ imported: conns.length - skipped.length, skipped });
    else out(`imported ${conns.length - skipped.length} connection(s)${skipped.length ? `; skipped ${skipped.length} that exist (pass --replace): ${skipped.join(', ')}` : ''}\n`);
  });
}

export async function connectionsTest(connId: string, json: boolean): Promise<number> {
  return withEnv(async ({ secrets }) => {
    const conn = await secrets.secrets.connection(connId);
    const type = connectionType(conn.connType);
    if (!type?.test) {
      const testable = connectionTypes().filter((t) => t.test).map((t) => t.type);
      throw new UpdraftError(`connection "${connId}" is of type "${conn.connType}", which has no test; types with a test: ${testable.join(', ') || '(none registered)'}`);
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('the test took longer than 30 s')), 30_000);
    let result;
    try {
      result = await type.test(conn, { signal: controller.signal });
    } catch (err) {
      result = { ok: false, message: (err as Error).message };
    } finally {
      clearTimeout(timer);
    }
    if (json) printJson({ connId, connType: conn.connType, ...result });
    else out(`${result.ok ? 'ok' : 'FAILED'}: ${connId} (${conn.connType}): ${result.message}\n`);
    return result.ok ? 0 : 1;
  });
}

// ---- variables

export async function variablesGet(key: string, fallback: string | undefined, json: boolean): Promise<number> {
  return withEnv(async ({ secrets }) => {
    const value = await secrets.secrets.variable(key);
    if (value === undefined && fallback === undefined) {
      throw new UpdraftError(`variable "${key}" is not defined; set it with \`updraft variables set ${key} <value>\` or UPDRAFT_VAR_${key.toUpperCase()}`);
    }
    if (json) printJson({ key, value: value ?? fallback });
    else out(`${value ?? fallback}\n`);
    return 0;
  });
}

export async function variablesSet(key: string, value: string, description: string | undefined, json: boolean): Promise<void> {
  if (!key.trim()) throw new UsageError('a variable key cannot be empty');
  await withEnv(async ({ secrets }) => {
    await secrets.store.putVariable(key, value, description ?? null);
    if (json) printJson({ set: key });
    else out(`set variable ${key}\n`);
  });
}

export async function variablesList(json: boolean): Promise<void> {
  await withEnv(async ({ secrets }) => {
    const vars = await secrets.store.listVariables();
    for (const v of vars) if (isSensitiveKey(v.key)) masker.add(v.value);
    const rows = vars.map((v) => ({ key: v.key, value: masker.mask(v.value), description: v.description }));
    if (json) printJson(rows);
    else out(`${table(rows, ['key', 'value', 'description'])}\n`);
  });
}

export async function variablesDelete(key: string, json: boolean): Promise<void> {
  await withEnv(async ({ secrets }) => {
    if (!await secrets.store.deleteVariables([key])) throw new UpdraftError(`no variable "${key}" in the metadata database`);
    if (json) printJson({ deleted: key });
    else out(`deleted variable ${key}\n`);
  });
}

export async function variablesExport(file: string, json: boolean): Promise<void> {
  await withEnv(async ({ secrets }) => {
    const vars = await secrets.store.listVariables();
    writeFileSync(file, `${JSON.stringify(Object.fromEntries(vars.map((v) => [v.key, v.value])), null, 2)}\n`, { mode: 0o600 });
    if (json) printJson({ exported: vars.length, file });
    else out(`exported ${vars.length} variable(s) to ${file}\n`);
  });
}

export async function variablesImport(file: string, json: boolean): Promise<void> {
  const doc = readDoc(file);
  await withEnv(async ({ secrets }) => {
    for (const [key, value] of Object.entries(doc)) await secrets.store.putVariable(key, typeof value === 'string' ? value : JSON.stringify(value));
    if (json) printJson({ imported: Object.keys(doc).length });
    else out(`imported ${Object.keys(doc).length} variable(s)\n`);
  });
}
