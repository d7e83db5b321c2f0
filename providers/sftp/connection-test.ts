/**
 * `updraft connections test` for `sftp`: a fresh connection (not the pool) with
 * ssh2-sftp-client, which verifies the host key, logs in and resolves the login directory.
 */
import SftpClient from 'ssh2-sftp-client';
import type { Connection, ConnectionTestResult } from 'updraft';
import { hostVerifier, resolveTarget, type HostKeyMismatchError } from './connection.ts';

export async function testSftpConnection(conn: Connection, signal: AbortSignal): Promise<ConnectionTestResult> {
  const started = Date.now();
  const client = new SftpClient('updraft-connection-test');
  let mismatch: HostKeyMismatchError | null = null;
  const onAbort = () => void client.end().catch(() => {});
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const t = resolveTarget(conn);
    await client.connect({
      host: t.host, port: t.port, username: t.username, password: t.password, privateKey: t.privateKey, passphrase: t.passphrase,
      readyTimeout: t.extra.conn_timeout * 1000, hostVerifier: hostVerifier(t, (e) => { mismatch = e; }),
    });
    const home = await client.cwd();
    return { ok: true, message: `logged in to ${t.host}:${t.port} as ${t.username} in ${Date.now() - started} ms; working directory ${home}` };
  } catch (err) {
    return { ok: false, message: (mismatch as HostKeyMismatchError | null)?.message ?? (err as Error).message };
  } finally {
    signal.removeEventListener('abort', onAbort);
    await client.end().catch(() => {});
  }
}
