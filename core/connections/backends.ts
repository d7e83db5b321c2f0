/**
 * Secrets backends: where connections and variables come from. Each answers
 * `getConnection(id)` and `getVariable(key)` with a value, or nothing when it has none. Built
 * in: the environment (UPDRAFT_CONN_<ID>, UPDRAFT_VAR_<KEY>), a local JSON or YAML file, and
 * the metadata database. A custom backend is a module named in `updraft.config.json`.
 *
 * A backend that throws is skipped (the lookup falls through to the next); one that throws
 * SecretAccessDenied ends the lookup, because a refusal must never be read as "not here".
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { UpdraftError, ConfigError } from '../errors.ts';
import type { SecretStore } from './store.ts';

export class SecretAccessDenied extends UpdraftError {
  constructor(readonly backend: string, readonly what: string, detail?: string) {
    super(`${backend} denied access to ${what}${detail ? `: ${detail}` : ''}`);
  }
}

/** A connection as a backend may give it: a URI, a JSON text, or an object (camelCase or snake_case). */
export type RawConnection = string | Record<string, unknown>;

export interface SecretsBackend {
  readonly name: string;
  getConnection(connId: string): Promise<RawConnection | null | undefined>;
  getVariable(key: string): Promise<string | null | undefined>;
}

export const envConnName = (connId: string) => `UPDRAFT_CONN_${connId.toUpperCase()}`;
export const envVarName = (key: string) => `UPDRAFT_VAR_${key.toUpperCase()}`;

export class EnvSecretsBackend implements SecretsBackend {
  readonly name = 'environment';
  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  async getConnection(connId: string) {
    return this.env[envConnName(connId)] || null;
  }

  async getVariable(key: string) {
    return this.env[envVarName(key)] ?? null;
  }
}

const fileSchema = (file: string, raw: unknown): { connections: Record<string, RawConnection>; variables: Record<string, unknown> } => {
  const doc = (raw ?? {}) as Record<string, unknown>;
  const unknown = Object.keys(doc).filter((k) => k !== 'connections' && k !== 'variables');
  if (typeof raw !== 'object' || Array.isArray(raw) || unknown.length) {
    throw new ConfigError(`secrets file ${file}: expected an object with "connections" and "variables"${unknown.length ? `; unknown key(s) ${unknown.join(', ')}` : ''}`);
  }
  return { connections: (doc.connections ?? {}) as Record<string, RawConnection>, variables: (doc.variables ?? {}) as Record<string, unknown> };
};

/** A local JSON or YAML file: `{ connections: { id: URI or object }, variables: { key: value } }`, re-read when it changes. */
export class FileSecretsBackend implements SecretsBackend {
  readonly name: string;
  private cache: { text: string; doc: ReturnType<typeof fileSchema> } | null = null;

  constructor(private readonly file: string) {
    this.name = `secrets file ${file}`;
  }

  private read() {
    const text = readFileSync(this.file, 'utf8');
    if (this.cache?.text === text) return this.cache.doc;
    let raw: unknown;
    try {
      raw = /\.ya?ml$/i.test(this.file) ? parseYaml(text) : JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`secrets file ${this.file} cannot be parsed: ${(err as Error).message}`);
    }
    const doc = fileSchema(this.file, raw);
    this.cache = { text, doc };
    return doc;
  }

  async getConnection(connId: string) {
    return this.read().connections[connId] ?? null;
  }

  async getVariable(key: string) {
    const v = this.read().variables[key];
    return v === undefined || v === null ? null : typeof v === 'string' ? v : JSON.stringify(v);
  }
}

export class DatabaseSecretsBackend implements SecretsBackend {
  readonly name = 'metadata database';
  constructor(private readonly store: SecretStore) {}

  async getConnection(connId: string) {
    const c = await this.store.getConnection(connId);
    return c ? { ...c } : null;
  }

  async getVariable(key: string) {
    return (await this.store.getVariable(key))?.value ?? null;
  }
}

export interface CustomBackendSpec {
  module: string;
  options?: Record<string, unknown>;
}

/**
 * A custom backend: the module's `createSecretsBackend(options)` (or default export) returns
 * an object with getConnection and getVariable. A relative path is resolved from the config file's folder.
 */
export async function loadCustomBackend(spec: CustomBackendSpec, baseDir: string): Promise<SecretsBackend> {
  const target = spec.module.startsWith('.') || path.isAbsolute(spec.module) ? pathToFileURL(path.resolve(baseDir, spec.module)).href : spec.module;
  let mod: Record<string, unknown>;
  try {
    mod = await import(target) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`secretsBackend module "${spec.module}" cannot be imported: ${(err as Error).message}`);
  }
  const factory = (mod.createSecretsBackend ?? mod.default) as ((o: Record<string, unknown>) => unknown) | undefined;
  if (typeof factory !== 'function') throw new ConfigError(`secretsBackend module "${spec.module}" must export createSecretsBackend(options) (or a default function)`);
  const backend = await factory(spec.options ?? {}) as Partial<SecretsBackend> | null;
  if (!backend || typeof backend.getConnection !== 'function' || typeof backend.getVariable !== 'function') {
    throw new ConfigError(`secretsBackend module "${spec.module}": createSecretsBackend() must return an object with getConnection(id) and getVariable(key)`);
  }
  return { name: backend.name ?? `secrets backend ${spec.module}`, getConnection: backend.getConnection.bind(backend), getVariable: backend.getVariable.bind(backend) };
}
