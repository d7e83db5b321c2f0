/**
 * `updraft connections ...`, `variables ...`, `tasks render` and `rotate-key` as a user runs
 * them (real processes, embedded PGlite in a throwaway data folder): each with --json, secrets
 * masked in every output unless asked for, sealed at rest, and one clear line for bad input.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.ts';

const PASSWORD = 's3cr/t@pw:#1';
let dataDir: string;

function updraft(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCli(args, { UPDRAFT_DATA_DIR: dataDir, UPDRAFT_DAGS_FOLDER: 'dags', ...env });
}

async function ok(args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await updraft(args, env);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

describe('connections, variables and templates on the command line', () => {
  beforeAll(() => { dataDir = mkdtempSync(path.join(os.tmpdir(), 'updraft-conn-cli-')); });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('adds, shows (masked), lists, exports, imports and deletes connections, with --json', async () => {
    const uri = `postgres://etl:${encodeURIComponent(PASSWORD)}@wh.internal:5432/dw?sslmode=require`;
    expect(JSON.parse(await ok(['connections', 'add', 'wh', '--uri', uri, '--json']))).toEqual({ added: 'wh', connType: 'postgres' });
    await ok(['connections', 'add', 'api', '--json', JSON.stringify({ conn_type: 'generic', host: 'https://api.example.com', extra: { api_token: 'tok_abcdef12345', region: 'eu' } })]);
    await ok(['connections', 'add', 'plain', '--type', 'generic', '--host', 'h.example', '--port', '8080', '--login', 'me', '--extra', '{"a":"b"}']);

    const shown = JSON.parse(await ok(['connections', 'get', 'wh', '--json']));
    expect(shown).toMatchObject({ connId: 'wh', connType: 'postgres', host: 'wh.internal', port: 5432, login: 'etl', schema: 'dw', password: '***', extra: { sslmode: 'require' } });
    expect(await ok(['connections', 'get', 'wh', '--uri'])).toBe('postgres://etl:***@wh.internal:5432/dw?sslmode=require\n');
    expect(await ok(['connections', 'get', 'wh', '--uri', '--show-secrets'])).toBe(`${uri}\n`);
    expect(JSON.parse(await ok(['connections', 'get', 'api', '--json'])).extra).toEqual({ api_token: '***', region: 'eu' });

    const listed = JSON.parse(await ok(['connections', 'list', '--json'], { UPDRAFT_CONN_FROM_ENV: 'http://u:envpassword1@e.example' })) as Record<string, unknown>[];
    expect(listed.map((c) => [c.connId, c.source])).toEqual([
      ['api', 'metadata database'], ['plain', 'metadata database'], ['wh', 'metadata database'], ['from_env', 'environment (UPDRAFT_CONN_FROM_ENV)'],
    ]);
    const text = JSON.stringify(listed);
    for (const secret of [PASSWORD, 'tok_abcdef12345', 'envpassword1']) expect(text).not.toContain(secret);

    const file = path.join(dataDir, 'conns.json');
    expect(JSON.parse(await ok(['connections', 'export', file, '--json']))).toEqual({ exported: 3, file });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8')).wh.password).toBe(PASSWORD);
    expect(JSON.parse(await ok(['connections', 'delete', 'wh', '--json']))).toEqual({ deleted: 'wh' });
    expect(JSON.parse(await ok(['connections', 'import', file, '--json']))).toEqual({ imported: 1, skipped: ['api', 'plain'] });
    expect(JSON.parse(await ok(['connections', 'get', 'wh', '--json', '--show-secrets'])).password).toBe(PASSWORD);
  });

  it('keeps passwords, extras and variables sealed in the database, and re-seals them on rotate-key', async () => {
    await ok(['variables', 'set', 'raw_check', 'value-for-raw-check']);
    // PGlite keeps its files in the data folder: no byte of a secret may be there in the clear.
    const dbFiles = (dir: string): string[] => readdirDeep(dir).filter((f) => !f.endsWith('.key'));
    const haystack = dbFiles(path.join(dataDir, 'db')).map((f) => readFileSync(f).toString('latin1')).join('');
    for (const secret of [PASSWORD, encodeURIComponent(PASSWORD), 'tok_abcdef12345', 'value-for-raw-check']) expect(haystack).not.toContain(secret);
    const key = 'a-new-key-for-everything-0123456789';
    const rotated = JSON.parse(await ok(['rotate-key', '--json'], { UPDRAFT_SECRET_KEY: key }));
    expect(rotated).toMatchObject({ connections: 3, variables: 1 });
    expect(JSON.parse(await ok(['connections', 'get', 'wh', '--json', '--show-secrets'], { UPDRAFT_SECRET_KEY: key })).password).toBe(PASSWORD);
    // The old key file alone no longer opens them.
    const r = await updraft(['connections', 'get', 'wh']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^updraft: connection "wh" could not be read: metadata database failed looking up connection "wh" \(SecretKeyError: connection "wh" password: sealed with key [0-9a-f]{8}, which is neither the key file .* nor in UPDRAFT_SECRET_KEY_PREVIOUS/);
    await ok(['rotate-key'], { UPDRAFT_SECRET_KEY_PREVIOUS: key });
    expect(JSON.parse(await ok(['connections', 'get', 'wh', '--json', '--show-secrets'])).password).toBe(PASSWORD);
  });

  it('sets, gets, lists (sensitive keys masked), exports and deletes variables, with --json', async () => {
    await ok(['variables', 'set', 'service_api_key', 'key-0987654321']);
    await ok(['variables', 'set', 'settings', '{"limit":5}', '--json']);
    expect(JSON.parse(await ok(['variables', 'get', 'settings', '--json']))).toEqual({ key: 'settings', value: '{"limit":5}' });
    expect(await ok(['variables', 'get', 'missing', '--default', 'fallback'])).toBe('fallback\n');
    expect(await ok(['variables', 'get', 'from_env'], { UPDRAFT_VAR_FROM_ENV: 'env-value' })).toBe('env-value\n');
    const listed = JSON.parse(await ok(['variables', 'list', '--json'])) as { key: string; value: string }[];
    expect(Object.fromEntries(listed.map((v) => [v.key, v.value]))).toMatchObject({ service_api_key: '***', settings: '{"limit":5}' });
    const file = path.join(dataDir, 'vars.json');
    await ok(['variables', 'export', file]);
    expect(JSON.parse(readFileSync(file, 'utf8')).service_api_key).toBe('key-0987654321');
    expect(JSON.parse(await ok(['variables', 'delete', 'settings', '--json']))).toEqual({ deleted: 'settings' });
    writeFileSync(file, JSON.stringify({ settings: { limit: 7 } }));
    expect(JSON.parse(await ok(['variables', 'import', file, '--json']))).toEqual({ imported: 1 });
    expect(await ok(['variables', 'get', 'settings'])).toBe('{"limit":7}\n');
  });

  it('refuses bad input with one line that says what and where', async () => {
    const bad = async (args: string[], message: RegExp) => {
      const r = await updraft(args);
      expect(r.code, r.stdout).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toContain('hunter22');
    };
    await bad(['connections', 'add', 'x', '--uri', 'postgres://u:hunter22@h:99999/db'], /^updraft: connections add x: .*port/);
    await bad(['connections', 'add', 'x'], /give exactly one of --uri URI, --json JSON or --type TYPE/);
    await bad(['connections', 'add', 'plain', '--type', 'generic'], /connection "plain" already exists; pass --replace/);
    await bad(['connections', 'get', 'nope'], /connection "nope" is not defined; looked in: environment, metadata database/);
    await bad(['variables', 'get', 'nope'], /variable "nope" is not defined/);
  });

  it('renders a task\'s templated fields without running it', async () => {
    const out = JSON.parse(await ok(['tasks', 'render', 'templated_report', 'report', '--logical-date', '2026-03-04T00:00:00Z', '--json'],
      { UPDRAFT_CONN_EXAMPLE_WAREHOUSE: 'postgres://report:render-pass-1@wh.example:5432/analytics', UPDRAFT_VAR_REPORT_LIMIT: '7' }));
    expect(out.fields.outputPath).toBe('.updraft/reports/analytics/20260304.sql');
    expect(out.fields.sql).toContain("where order_date >= '2026-03-04' and order_date < '2026-03-05'");
    expect(out.fields.sql).toContain('from analytics.orders');
    expect(out.fields.sql).toContain('limit 7');
    const r = await updraft(['tasks', 'render', 'templated_report', 'report']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/conn\.example_warehouse/);
  });
});

function readdirDeep(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? readdirDeep(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}
