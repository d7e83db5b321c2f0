/** `updraft api-server` as its own process, users from the config file, and `users hash-password`. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, runCli } from '../helpers/cli.ts';
import { ApiClient } from '../helpers/api-client.ts';
import { verifyPassword } from '../../api/index.ts';
import { waitFor } from '../helpers/pg.ts';

const FIXTURES = path.join(ROOT, 'tests/fixtures/api/dags');

describe('users hash-password', () => {
  it('prints a scrypt hash of --password, or of stdin', async () => {
    const r = await runCli(['users', 'hash-password', '--password', 'pw-123'], {});
    expect(r.code).toBe(0);
    expect(await verifyPassword('pw-123', r.stdout.trim())).toBe(true);
    const empty = await runCli(['users', 'hash-password'], {});
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('give the password with --password or on stdin');
  });
});

describe('updraft api-server', () => {
  let child: ChildProcess;
  let url: string;
  let stderr = '';
  const dir = mkdtempSync(path.join(tmpdir(), 'updraft-api-server-'));

  beforeAll(async () => {
    const hash = (await runCli(['users', 'hash-password', '--password', 'ada-pass'], {})).stdout.trim();
    writeFileSync(path.join(dir, 'updraft.config.json'), JSON.stringify({ api: { users: [{ username: 'ada', role: 'admin', password: hash }] } }));
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'DATABASE_URL' && !k.startsWith('UPDRAFT_')));
    child = spawn(process.execPath, [path.join(ROOT, 'bin/updraft.js'), 'api-server', '--port', '0'], {
      cwd: dir, env: { ...base, UPDRAFT_DAGS_FOLDER: FIXTURES, UPDRAFT_DATA_DIR: path.join(dir, 'data') }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    url = await waitFor(() => /updraft api-server: (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1], `the api-server to start (stderr: ${stderr})`, 60_000);
  });
  afterAll(() => {
    child?.kill('SIGKILL');
  });

  it('serves the API to a configured user and the UI shell, and stops on SIGTERM', async () => {
    expect(stderr).toContain('1 user(s), 0 token(s) from the config');
    const c = new ApiClient(url);
    expect((await c.login('ada', 'nope')).status).toBe(401);
    expect((await c.login('ada', 'ada-pass')).status).toBe(200);
    // DAGs reach the database through a scheduler; alone, the server shows none yet.
    expect((await c.get('/api/v1/dags')).body).toEqual({ dags: [], total: 0 });
    expect((await c.get('/api/v1/auth/me')).body).toMatchObject({ username: 'ada', role: 'admin' });
    const page = await fetch(`${url}/dags/api_demo/grid`);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('/static/app.js');
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
