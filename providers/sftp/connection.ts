/**
 * The `sftp` connection type. `host`, `port` (22), `login`, `password`; extras: a private key
 * (`private_key` PEM text or `key_file`, with `passphrase`), the server's host key (`host_key`
 * or a `known_hosts` file), `no_host_key_check` (default false: host keys are verified),
 * `conn_timeout` and `keepalive_interval` in seconds, and the pool's `max_connections` (4) and
 * `max_in_flight` requests per connection (64).
 */
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { maskSecret, registerConnectionType, type Connection, type ConnectionTestResult } from 'updraft';

export const SFTP_DEFAULT_CONN_ID = 'sftp_default';

const bool = z.preprocess((v) => (v === 'false' || v === '0' ? false : v === 'true' || v === '1' ? true : v), z.boolean());
const positiveInt = z.coerce.number().int().positive();

export const sftpExtraSchema = z.object({
  private_key: z.string().min(1).optional(),
  key_file: z.string().min(1).optional(),
  passphrase: z.string().optional(),
  host_key: z.string().min(1).optional(),
  known_hosts: z.string().min(1).optional(),
  no_host_key_check: bool.default(false),
  /** Seconds to wait for the SSH handshake (default 10). */
  conn_timeout: z.coerce.number().positive().default(10),
  /** Seconds between SSH keepalives (default 30; 0 turns them off). */
  keepalive_interval: z.coerce.number().min(0).default(30),
  max_connections: positiveInt.max(64).default(4),
  max_in_flight: positiveInt.max(1024).default(64),
  /** Seconds an unused connection stays open (default 60). */
  idle_timeout: z.coerce.number().positive().default(60),
}).strict();

export type SftpExtra = z.output<typeof sftpExtraSchema>;

/** What ssh2 needs to connect, resolved once per pool. */
export interface SshTarget {
  connId: string;
  host: string;
  port: number;
  username: string;
  password?: string;
  privateKey?: string | Buffer;
  passphrase?: string;
  extra: SftpExtra;
  /** Host keys the server may present (base64 blobs); empty with no_host_key_check. */
  knownKeys: string[];
}

export class HostKeyMismatchError extends Error {
  override readonly name = 'HostKeyMismatchError';
  readonly retryable = false;
}

export function resolveTarget(conn: Connection): SshTarget {
  const extra = sftpExtraSchema.parse(conn.extra ?? {});
  if (!conn.host) throw new Error(`sftp connection "${conn.connId}" has no host; set host (and port, default 22)`);
  if (!conn.login) throw new Error(`sftp connection "${conn.connId}" has no login; set the user name to log in as`);
  if (extra.private_key && extra.key_file) throw new Error(`sftp connection "${conn.connId}": give private_key or key_file, not both`);
  let privateKey: string | Buffer | undefined = extra.private_key?.replace(/\\n/g, '\n');
  if (extra.key_file) {
    try {
      privateKey = readFileSync(extra.key_file);
    } catch (err) {
      throw new Error(`sftp connection "${conn.connId}": cannot read key_file ${extra.key_file}: ${(err as Error).message}`);
    }
  }
  if (conn.password) maskSecret(conn.password);
  if (extra.passphrase) maskSecret(extra.passphrase);
  if (extra.private_key) maskSecret(extra.private_key);
  if (!conn.password && !privateKey) throw new Error(`sftp connection "${conn.connId}" has neither a password nor a private key (private_key or key_file)`);
  const port = conn.port ?? 22;
  const knownKeys = extra.no_host_key_check ? [] : hostKeysFor(conn.connId, conn.host, port, extra);
  return {
    connId: conn.connId, host: conn.host, port, username: conn.login, password: conn.password ?? undefined,
    privateKey, passphrase: extra.passphrase, extra, knownKeys,
  };
}

/** `SHA256:…` as OpenSSH prints it, for a base64 key blob. */
export function fingerprint(blob: Buffer | string): string {
  const raw = typeof blob === 'string' ? Buffer.from(blob, 'base64') : blob;
  return `SHA256:${createHash('sha256').update(raw).digest('base64').replace(/=+$/, '')}`;
}

/** The base64 blob of `ssh-ed25519 AAAA… comment`, or of a bare blob. */
function blobOf(text: string): string {
  const parts = text.trim().split(/\s+/);
  const blob = parts.length >= 2 && /^(ssh-|ecdsa-|sk-)/.test(parts[0]) ? parts[1] : parts[0];
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) throw new Error(`not a host key: expected "ssh-ed25519 AAAA…" or its base64 blob, got "${text.slice(0, 40)}…"`);
  return blob;
}

/** A known_hosts host field matches `host` (or `[host]:port`), hashed (`|1|salt|hash`) or not. */
function hostMatches(field: string, host: string, port: number): boolean {
  const names = port === 22 ? [host, `[${host}]:22`] : [`[${host}]:${port}`];
  for (const pattern of field.split(',')) {
    if (pattern.startsWith('|1|')) {
      const [, , salt, hash] = pattern.split('|');
      for (const name of names) {
        if (createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash) return true;
      }
    } else if (names.includes(pattern)) return true;
  }
  return false;
}

function hostKeysFor(connId: string, host: string, port: number, extra: SftpExtra): string[] {
  if (extra.host_key) {
    try {
      return [blobOf(extra.host_key)];
    } catch (err) {
      throw new Error(`sftp connection "${connId}": host_key: ${(err as Error).message}`);
    }
  }
  if (extra.known_hosts) {
    let text: string;
    try {
      text = readFileSync(extra.known_hosts, 'utf8');
    } catch (err) {
      throw new Error(`sftp connection "${connId}": cannot read known_hosts ${extra.known_hosts}: ${(err as Error).message}`);
    }
    const keys: string[] = [];
    for (const line of text.split('\n')) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 3 || fields[0].startsWith('#') || fields[0].startsWith('@')) continue;
      if (hostMatches(fields[0], host, port)) keys.push(fields[2]);
    }
    if (!keys.length) {
      throw new HostKeyMismatchError(`sftp connection "${connId}": ${extra.known_hosts} has no key for ${port === 22 ? host : `[${host}]:${port}`}; `
        + `add it (ssh-keyscan -p ${port} ${host} >> ${extra.known_hosts}) after checking its fingerprint with the server's owner`);
    }
    return keys;
  }
  throw new HostKeyMismatchError(`sftp connection "${connId}" has no host key to verify ${host}:${port} against: set the extra host_key `
    + `("ssh-ed25519 AAAA…", from ssh-keyscan -p ${port} ${host}) or known_hosts (a file path); no_host_key_check: true accepts any key, which is unsafe`);
}

/** ssh2's hostVerifier for a target: accepts a known key, else throws the mismatch to the caller through `onMismatch`. */
export function hostVerifier(target: SshTarget, onMismatch: (err: HostKeyMismatchError) => void): ((key: Buffer) => boolean) | undefined {
  if (target.extra.no_host_key_check) return undefined;
  return (key: Buffer) => {
    const offered = key.toString('base64');
    if (target.knownKeys.includes(offered)) return true;
    onMismatch(new HostKeyMismatchError(`host key mismatch for ${target.host}:${target.port} (connection "${target.connId}"): `
      + `expected ${target.knownKeys.map(fingerprint).join(' or ')}, the server offered ${fingerprint(key)}. `
      + 'If the server\'s key changed on purpose, update the connection\'s host_key (or known_hosts); otherwise something may be intercepting the connection'));
    return false;
  };
}

export function registerSftpConnectionType(test: (conn: Connection, signal: AbortSignal) => Promise<ConnectionTestResult>): void {
  registerConnectionType({
    type: 'sftp', label: 'SFTP', defaultConnId: SFTP_DEFAULT_CONN_ID,
    extraSchema: sftpExtraSchema as unknown as z.ZodObject<z.ZodRawShape>,
    test: (conn, { signal }) => test(conn, signal),
  });
}
