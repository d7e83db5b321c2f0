/**
 * The lookup order (configured backends, then the environment, then the database), fall-through
 * on a failing backend, access denied ending the lookup, the per-process cache, the built-in
 * file backend (JSON and YAML), a custom backend module, and connection types checking extras.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import {
  Secrets, SecretAccessDenied, EnvSecretsBackend, FileSecretsBackend, loadCustomBackend, masker, registerConnectionType,
  validateConnection, InvalidConnectionError, ConnectionNotFoundError, SecretsLookupError, openSecrets, loadConfig,
  type SecretsBackend,
} from '../../../core/index.ts';

function backend(name: string, conns: Record<string, string | Record<string, unknown>>, vars: Record<string, string> = {}, calls?: string[]): SecretsBackend {
  return {
    name,
    async getConnection(id) { calls?.push(`${name}:${id}`); return conns[id] ?? null; },
    async getVariable(key) { calls?.push(`${name}:${key}`); return vars[key] ?? null; },
  };
}

const failing = (name: string): SecretsBackend => ({
  name,
  async getConnection() { throw new Error('vault unreachable (password hunter2hunter2 in the message)'); },
  async getVariable() { throw new Error('vault unreachable'); },
});

const denying: SecretsBackend = {
  name: 'vault',
  async getConnection(id) { throw new SecretAccessDenied('vault', `connection "${id}"`, 'policy forbids it'); },
  async getVariable(key) { throw new SecretAccessDenied('vault', `variable "${key}"`); },
};

describe('secrets lookup', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync(path.join(tmpdir(), 'updraft-secrets-')); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => masker.clear());

  it('asks the backends in order and takes the first answer', async () => {
    const calls: string[] = [];
    const s = new Secrets([
      backend('custom', {}, {}, calls),
      backend('env', { db: 'postgres://a:envpass1@env-host/db' }, { v: 'from-env' }, calls),
      backend('database', { db: 'postgres://a:dbpass11@db-host/db' }, { v: 'from-db' }, calls),
    ]);
    expect((await s.connection('db')).host).toBe('env-host');
    expect(await s.variable('v')).toBe('from-env');
    expect(calls).toEqual(['custom:db', 'env:db', 'custom:v', 'env:v']);
  });

  it('falls through a backend that throws, warning without the value, and stops at access denied', async () => {
    const warnings: string[] = [];
    masker.add('hunter2hunter2');
    const s = new Secrets([failing('vault'), backend('env', { db: { conn_type: 'postgres', host: 'h', password: 'pw-from-env' } })], { warn: (m) => warnings.push(m) });
    expect((await s.connection('db')).password).toBe('pw-from-env');
    expect(warnings).toEqual(['vault failed looking up connection "db" (Error: vault unreachable (password *** in the message)); env answered instead']);

    const denied = new Secrets([denying, backend('env', { db: 'postgres://h' })]);
    await expect(denied.connection('db')).rejects.toThrow(new SecretAccessDenied('vault', 'connection "db"', 'policy forbids it'));
    await expect(denied.variable('k')).rejects.toBeInstanceOf(SecretAccessDenied);

    await expect(new Secrets([failing('vault')], { warn: () => {} }).connection('db')).rejects.toBeInstanceOf(SecretsLookupError);
    await expect(new Secrets([backend('env', {})]).connection('nope')).rejects.toThrow(ConnectionNotFoundError);
    expect(await new Secrets([backend('env', {})]).variable('nope')).toBeUndefined();
  });

  it('looks a connection up once for 10,000 concurrent askers, within the TTL', async () => {
    const calls: string[] = [];
    const s = new Secrets([backend('env', { api: 'http://u:p4ssword@api.example' }, {}, calls)], { ttlMs: 60_000 });
    const conns = await Promise.all(Array.from({ length: 10_000 }, () => s.connection('api')));
    expect(new Set(conns.map((c) => c.host)).size).toBe(1);
    expect(calls).toEqual(['env:api']);
    const uncached = new Secrets([backend('env', { api: 'http://api.example' }, {}, calls)], { ttlMs: 0 });
    await uncached.connection('api');
    await uncached.connection('api');
    expect(calls).toHaveLength(3);
  });

  it('registers what it finds with the masker: passwords, sensitive extras and variables', async () => {
    const s = new Secrets([backend('env', { api: { conn_type: 'http', host: 'h', password: 'conn-password-1', extra: { api_token: 'tok-123456', region: 'eu-west' } } }, { my_secret: 'sekrit-value', plain: 'ordinary-value' })]);
    await s.connection('api');
    await s.variable('my_secret');
    await s.variable('plain');
    expect(masker.mask('conn-password-1 tok-123456 eu-west sekrit-value ordinary-value')).toBe('*** *** eu-west *** ordinary-value');
  });

  it('reads connections from the environment as a URI or JSON, upper-casing the id', async () => {
    const env = new EnvSecretsBackend({ UPDRAFT_CONN_MY_API: 'https://u:pw%2F1@api.example.com:8443/v1', UPDRAFT_CONN_JSON_ONE: '{"conn_type":"generic","host":"j","extra":{"k":1}}', UPDRAFT_VAR_LIMIT: '5' });
    const s = new Secrets([env]);
    expect(await s.connection('my_api')).toMatchObject({ connId: 'my_api', connType: 'https', host: 'api.example.com', port: 8443, schema: 'v1', login: 'u', password: 'pw/1' });
    expect(await s.connection('json_one')).toMatchObject({ connType: 'generic', host: 'j', extra: { k: 1 } });
    expect(await s.variable('limit')).toBe('5');
  });

  it('reads a local JSON or YAML secrets file, re-reading it when it changes', async () => {
    const json = path.join(dir, 'secrets.json');
    writeFileSync(json, JSON.stringify({ connections: { wh: 'postgres://a:b1234@wh/x' }, variables: { cfg: { limit: 3 }, name: 'n' } }));
    const fromJson = new Secrets([new FileSecretsBackend(json)], { ttlMs: 0 });
    expect((await fromJson.connection('wh')).host).toBe('wh');
    expect(await fromJson.variable('cfg')).toBe('{"limit":3}');
    writeFileSync(json, JSON.stringify({ connections: { wh: 'postgres://a:b1234@wh2/x' } }));
    expect((await fromJson.connection('wh')).host).toBe('wh2');

    const yaml = path.join(dir, 'secrets.yaml');
    writeFileSync(yaml, 'connections:\n  api:\n    conn_type: http\n    host: api.example\n    extra:\n      timeout: 30\nvariables:\n  greeting: hello\n');
    const fromYaml = new Secrets([new FileSecretsBackend(yaml)]);
    expect(await fromYaml.connection('api')).toMatchObject({ connType: 'http', host: 'api.example', extra: { timeout: 30 } });
    expect(await fromYaml.variable('greeting')).toBe('hello');

    writeFileSync(yaml, 'conections: {}\n');
    await expect(new Secrets([new FileSecretsBackend(yaml)]).connection('api')).rejects.toThrow(/unknown key\(s\) conections/);
  });

  it('loads a custom backend module named in the config file, and asks it first', async () => {
    writeFileSync(path.join(dir, 'vault.mjs'), `export function createSecretsBackend(options) {
      return { name: 'test vault', async getConnection(id) { return id === 'wh' ? 'postgres://v:vaultpw1@' + options.host + '/x' : null; }, async getVariable() { return null; } };
    }`);
    writeFileSync(path.join(dir, 'updraft.config.json'), JSON.stringify({ secretsBackend: { module: './vault.mjs', options: { host: 'vault-host' } } }));
    const config = loadConfig({ UPDRAFT_CONN_WH: 'postgres://e:envpw111@env-host/x' }, dir);
    const custom = await loadCustomBackend(config.secretsBackend!, dir);
    expect(custom.name).toBe('test vault');
    const { secrets } = await openSecrets(config, {} as never);
    expect(secrets.backends.map((b) => b.name)).toEqual(['test vault', 'environment', 'metadata database']);
    expect((await secrets.connection('wh')).host).toBe('vault-host');
    await expect(loadCustomBackend({ module: './missing.mjs' }, dir)).rejects.toThrow(/secretsBackend module "\.\/missing\.mjs" cannot be imported/);
  });

  it('checks extras against a registered connection type and names the known keys', () => {
    registerConnectionType({ type: 'test_api', aliases: ['test-alias'], defaultConnId: 'test_api_default', extraSchema: z.object({ timeout: z.number().optional(), token: z.string().optional() }).strict() });
    expect(validateConnection({ connId: 'x', connType: 'test-alias', extra: { timeout: 5 } }, 'here')).toMatchObject({ connType: 'test_api', extra: { timeout: 5 } });
    expect(() => validateConnection({ connId: 'x', connType: 'test_api', extra: { timeot: 5 } }, 'connections add x'))
      .toThrow(new InvalidConnectionError('connections add x', 'unknown extra "timeot" for connection type "test_api"; known extras: timeout, token'));
    expect(() => validateConnection({ connId: 'x', connType: 'test_api', extra: { timeout: 'soon' } }, 'here')).toThrow(/extra of a "test_api" connection: timeout/);
    expect(() => validateConnection({ connId: 'bad id!', connType: 'test_api' }, 'here')).toThrow(/connId: conn ids use/);
  });
});
