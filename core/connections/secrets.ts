/**
 * Looks connections and variables up through the backends in Updraft's fixed order:
 * configured backends (a custom module, the secrets file), then the environment, then the
 * metadata database. Answers are cached for a short TTL with one lookup in flight per name,
 * so 10,000 triggers on one conn id cost one lookup. Every secret found is registered with
 * the process's masker before anyone can print it.
 */
import { UpdraftError } from '../errors.ts';
import { masker, isSensitiveKey } from '../secrets/masker.ts';
import { parseConnectionUri } from './uri.ts';
import { validateConnection, type Connection } from './connection.ts';
import { SecretAccessDenied, type RawConnection, type SecretsBackend } from './backends.ts';

/** Nothing answered, and at least one source failed: the failure, not "not defined", is the news. */
export class SecretsLookupError extends UpdraftError {
  constructor(readonly what: string, failures: string[]) {
    super(`${what} could not be read: ${failures.join('; ')}`);
  }
}

export class ConnectionNotFoundError extends UpdraftError {
  constructor(readonly connId: string, searched: string[]) {
    super(`connection "${connId}" is not defined; looked in: ${searched.join(', ')}. Add it with \`updraft connections add ${connId} --uri ...\` or set ${'UPDRAFT_CONN_'}${connId.toUpperCase()}`);
  }
}

const KEYS: Record<string, string> = { conn_id: 'connId', conn_type: 'connType', type: 'connType', extra_dejson: 'extra' };

/** A backend's answer as a Connection: URI, JSON text or object, validated. */
export function toConnection(raw: RawConnection, connId: string, where: string): Connection {
  if (typeof raw === 'string') {
    const text = raw.trim();
    if (!text.startsWith('{')) return validateConnection({ ...parseConnectionUri(text, where), connId }, where);
    try {
      raw = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new UpdraftError(`${where}: not a connection URI, and not valid JSON: ${(err as Error).message}`);
    }
  }
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) fields[KEYS[k] ?? k] = v;
  if (typeof fields.extra === 'string') {
    try {
      fields.extra = fields.extra.trim() ? JSON.parse(fields.extra) : {};
    } catch {
      throw new UpdraftError(`${where}: "extra" must be a JSON object`);
    }
  }
  return validateConnection({ ...fields, connId }, where);
}

interface Cached<T> {
  at: number;
  value: Promise<T>;
}

export interface SecretsOptions {
  /** How long an answer is reused (default 10 s; 0 looks up every time). */
  ttlMs?: number;
  /** Where backend failures are reported; the message never holds a secret value. */
  warn?: (message: string) => void;
}

export class Secrets {
  private readonly connections = new Map<string, Cached<Connection>>();
  private readonly variables = new Map<string, Cached<string | undefined>>();
  private readonly ttlMs: number;
  private readonly warn: (message: string) => void;

  constructor(readonly backends: readonly SecretsBackend[], options: SecretsOptions = {}) {
    this.ttlMs = options.ttlMs ?? 10_000;
    this.warn = options.warn ?? ((m) => process.stderr.write(`updraft: ${m}\n`));
  }

  connection(connId: string): Promise<Connection> {
    return this.cached(this.connections, connId, () => this.lookupConnection(connId));
  }

  variable(key: string): Promise<string | undefined> {
    return this.cached(this.variables, key, () => this.lookupVariable(key));
  }

  /** Forget cached answers (all, or one name), after a change this process made. */
  invalidate(name?: string): void {
    if (name === undefined) {
      this.connections.clear();
      this.variables.clear();
    } else {
      this.connections.delete(name);
      this.variables.delete(name);
    }
  }

  private cached<T>(cache: Map<string, Cached<T>>, name: string, load: () => Promise<T>): Promise<T> {
    const hit = cache.get(name);
    if (hit && Date.now() - hit.at < this.ttlMs) return hit.value;
    const value = load();
    cache.set(name, { at: Date.now(), value });
    // A failure is not cached: the next caller asks again.
    value.catch(() => { if (cache.get(name)?.value === value) cache.delete(name); });
    return value;
  }

  /**
   * The first answer in backend order. A backend that fails is skipped; if a later one answers,
   * the failure is reported as a warning, and if none does, the failure is the error.
   */
  private async ask<T>(what: string, query: (b: SecretsBackend) => Promise<T | null | undefined>): Promise<{ value: T; backend: SecretsBackend } | null> {
    const failures: string[] = [];
    for (const backend of this.backends) {
      try {
        const value = await query(backend);
        if (value !== null && value !== undefined) {
          for (const f of failures) this.warn(`${f}; ${backend.name} answered instead`);
          return { value, backend };
        }
      } catch (err) {
        if (err instanceof SecretAccessDenied) throw err;
        failures.push(`${backend.name} failed looking up ${what} (${err instanceof Error ? err.name : 'error'}: ${masker.mask(err instanceof Error ? err.message : String(err))})`);
      }
    }
    if (failures.length) throw new SecretsLookupError(what, failures);
    return null;
  }

  private async lookupConnection(connId: string): Promise<Connection> {
    const found = await this.ask(`connection "${connId}"`, (b) => b.getConnection(connId));
    if (!found) throw new ConnectionNotFoundError(connId, this.backends.map((b) => b.name));
    const conn = toConnection(found.value, connId, `connection "${connId}" from ${found.backend.name}`);
    masker.addConnection(conn);
    return conn;
  }

  private async lookupVariable(key: string): Promise<string | undefined> {
    const found = await this.ask(`variable "${key}"`, (b) => b.getVariable(key));
    if (!found) return undefined;
    if (isSensitiveKey(key)) masker.add(found.value);
    else if (/^\s*[{[]/.test(found.value)) {
      try {
        masker.addFrom(JSON.parse(found.value));
      } catch {
        // Not JSON after all: only its key decides.
      }
    }
    return found.value;
  }
}
