/**
 * Who is asking. Users come from the config file with scrypt-hashed passwords; API clients
 * send a bearer token, also stored as a scrypt hash. A browser holds a session cookie that is
 * signed (HMAC), HttpOnly and SameSite=Lax, carrying the user, role, expiry and a CSRF token;
 * changes from a cookie session must echo that token in `X-CSRF-Token`. A bearer token is no
 * ambient credential, so it needs no CSRF token. `auth: none` makes everyone an admin and is
 * refused unless the server binds a loopback address.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Context } from 'hono';
import { deleteCookie, getSignedCookie, setSignedCookie } from 'hono/cookie';
import type { ApiConfig, ApiRole } from '../core/index.ts';
import { ApiError, forbidden, unauthorized } from './errors.ts';

export interface Principal {
  username: string;
  role: ApiRole;
  via: 'session' | 'token' | 'none';
  csrf: string | null;
}

export const SESSION_COOKIE = 'updraft_session';
export const CSRF_HEADER = 'x-csrf-token';

const SCRYPT = { N: 16_384, r: 8, p: 1, keylen: 32 } as const;

function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

/** `scrypt$N$r$p$salt$hash` (base64): what the config file's `password` and token `hash` hold. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p });
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split('$');
  if (kind !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const key = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: 256 * 1024 * 1024 });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

interface SessionBody {
  u: string;
  r: ApiRole;
  c: string;
  e: number;
}

export interface AuthOptions {
  config: ApiConfig;
  /** Users beyond the config file's (the login `standalone` generates). */
  extraUsers?: ApiConfig['users'];
  /** HMAC key of session cookies; every api-server behind one address needs the same. */
  sessionSecret: string;
  /** Whether the server binds only a loopback address (required for `auth: none`). */
  loopback: boolean;
}

export class Auth {
  private readonly users: Map<string, ApiConfig['users'][number]>;
  /** sha256 of tokens already verified with scrypt, so each request costs one hash. */
  private readonly knownTokens = new Map<string, { name: string; role: ApiRole }>();

  constructor(private readonly opts: AuthOptions) {
    if (opts.config.auth === 'none' && !opts.loopback) {
      throw new ApiError(500, 'config', 'api.auth is "none", which is only allowed on a loopback bind (127.0.0.1 or ::1); set api.host to 127.0.0.1 or configure users');
    }
    this.users = new Map([...opts.config.users, ...(opts.extraUsers ?? [])].map((u) => [u.username, u]));
  }

  get mode(): 'password' | 'none' {
    return this.opts.config.auth;
  }

  async login(c: Context, username: string, password: string): Promise<Principal> {
    const user = this.users.get(username);
    // Hash even for an unknown user, so timing does not tell which names exist.
    const ok = await verifyPassword(password, user?.password ?? DUMMY_HASH);
    if (!user || !ok) throw unauthorized('wrong username or password');
    const body: SessionBody = { u: user.username, r: user.role, c: randomBytes(18).toString('base64url'), e: Date.now() + this.opts.config.sessionTtlMs };
    await setSignedCookie(c, SESSION_COOKIE, Buffer.from(JSON.stringify(body)).toString('base64url'), this.opts.sessionSecret, {
      httpOnly: true, sameSite: 'Lax', path: '/', maxAge: Math.floor(this.opts.config.sessionTtlMs / 1000),
      secure: new URL(c.req.url).protocol === 'https:',
    });
    return { username: body.u, role: body.r, via: 'session', csrf: body.c };
  }

  logout(c: Context): void {
    deleteCookie(c, SESSION_COOKIE, { path: '/' });
  }

  /** The principal of a request, or null when it carries no valid credential. */
  async identify(c: Context): Promise<Principal | null> {
    if (this.opts.config.auth === 'none') return { username: 'anonymous', role: 'admin', via: 'none', csrf: null };
    const header = c.req.header('authorization');
    if (header?.toLowerCase().startsWith('bearer ')) return this.identifyToken(header.slice(7).trim());
    const raw = await getSignedCookie(c, this.opts.sessionSecret, SESSION_COOKIE);
    if (!raw) return null;
    let body: SessionBody;
    try {
      body = JSON.parse(Buffer.from(raw, 'base64url').toString()) as SessionBody;
    } catch {
      return null;
    }
    if (typeof body.e !== 'number' || body.e < Date.now()) return null;
    // A user removed from the config, or whose role changed, is out at the next request.
    const user = this.users.get(body.u);
    if (!user || user.role !== body.r) return null;
    return { username: body.u, role: body.r, via: 'session', csrf: body.c };
  }

  private async identifyToken(token: string): Promise<Principal | null> {
    const digest = createHash('sha256').update(token).digest('hex');
    let known = this.knownTokens.get(digest);
    if (!known) {
      for (const t of this.opts.config.tokens) {
        if (await verifyPassword(token, t.hash)) {
          known = { name: t.name, role: t.role };
          this.knownTokens.set(digest, known);
          break;
        }
      }
    }
    return known ? { username: `token:${known.name}`, role: known.role, via: 'token', csrf: null } : null;
  }

  /** Throws unless the principal may do this: admins change things, viewers only read. */
  static check(principal: Principal | null, method: string, needs: ApiRole, csrfHeader: string | undefined): Principal {
    if (!principal) throw unauthorized();
    if (needs === 'admin' && principal.role !== 'admin') throw forbidden(`${principal.username} is a viewer; this needs the admin role`);
    const changes = !['GET', 'HEAD', 'OPTIONS'].includes(method);
    if (changes && principal.via === 'session' && (!csrfHeader || !safeEqual(csrfHeader, principal.csrf ?? ''))) {
      throw forbidden(`missing or wrong ${CSRF_HEADER} header: send the csrfToken from GET /api/v1/auth/me with every change`);
    }
    return principal;
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const DUMMY_HASH = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';

/** The session key in the data folder, made on first use (0600), unless UPDRAFT_API_SECRET is set. */
export function sessionSecret(dataDir: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.UPDRAFT_API_SECRET) return env.UPDRAFT_API_SECRET;
  const file = path.resolve(dataDir, 'api-session.key');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(path.dirname(file), { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}

/**
 * `standalone`'s login when the config names no user: an admin with a random password, kept
 * in the data folder (as `airflow standalone` does) so restarts keep the same login.
 */
export async function standaloneAdmin(dataDir: string): Promise<{ username: string; password: string; user: ApiConfig['users'][number] }> {
  const file = path.resolve(dataDir, 'standalone-admin-password.txt');
  let password: string;
  if (existsSync(file)) {
    password = readFileSync(file, 'utf8').trim();
  } else {
    mkdirSync(path.dirname(file), { recursive: true });
    password = randomBytes(12).toString('base64url');
    writeFileSync(file, `${password}\n`, { mode: 0o600 });
  }
  return { username: 'admin', password, user: { username: 'admin', role: 'admin', password: await hashPassword(password) } };
}
