/** Password hashing and the config's api section. */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hashPassword, verifyPassword, standaloneAdmin } from '../../api/index.ts';
import { ConfigError, loadConfig } from '../../core/index.ts';

describe('scrypt passwords', () => {
  it('verifies the right password only, with a fresh salt each time', async () => {
    const a = await hashPassword('correct horse');
    const b = await hashPassword('correct horse');
    expect(a).toMatch(/^scrypt\$16384\$8\$1\$[\w+/=]+\$[\w+/=]+$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword('correct horse', a)).toBe(true);
    expect(await verifyPassword('correct horsf', a)).toBe(false);
    expect(await verifyPassword('correct horse', 'plain-text')).toBe(false);
  });

  it('keeps standalone\'s generated login across restarts', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'updraft-admin-'));
    const first = await standaloneAdmin(dir);
    const again = await standaloneAdmin(dir);
    expect(first.password).toHaveLength(16);
    expect(again.password).toBe(first.password);
    expect(await verifyPassword(first.password, again.user.password)).toBe(true);
  });
});

describe('config: api', () => {
  const withConfig = (api: unknown) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'updraft-cfg-'));
    writeFileSync(path.join(dir, 'updraft.config.json'), JSON.stringify({ api }));
    return loadConfig({}, dir);
  };

  it('reads users, tokens and the session lifetime', async () => {
    const hash = await hashPassword('x');
    const c = withConfig({ users: [{ username: 'ada', role: 'admin', password: hash }], tokens: [{ name: 'ci', role: 'viewer', hash }], sessionTtl: '1h' });
    expect(c.api).toMatchObject({ auth: 'password', host: '127.0.0.1', port: null, sessionTtlMs: 3_600_000 });
    expect(c.api.users[0]).toMatchObject({ username: 'ada', role: 'admin' });
  });

  it('refuses a plain-text password and says how to hash one', () => {
    expect(() => withConfig({ users: [{ username: 'ada', role: 'admin', password: 'hunter2' }] })).toThrow(ConfigError);
    expect(() => withConfig({ users: [{ username: 'ada', role: 'admin', password: 'hunter2' }] })).toThrow(/api\.users\.0\.password: password must be a scrypt hash made by `updraft users hash-password`/);
    expect(() => withConfig({ users: [{ username: 'ada', role: 'owner', password: 'scrypt$x' }] })).toThrow(/api\.users\.0\.role/);
  });
});
