/**
 * `updraft api-server`: the web UI and REST API as a service; `users hash-password`: the scrypt
 * hash the config file's users and tokens hold. `standalone` starts the same server with
 * `startUi`, and a generated admin login when the config names no user.
 */
import { createApiServer, hashPassword, sessionSecret, standaloneAdmin, type ApiServer } from '../../api/index.ts';
import type { DagBag } from '../../core/index.ts';
import { UsageError } from '../errors.ts';
import { loadBag, openEnv, out, type CliEnv } from '../env.ts';
import { healthReport } from '../health.ts';
import { untilSignal } from './services.ts';

export async function startUi(env: CliEnv, bag: DagBag | null, opts: { host?: string; port: number; generateLogin?: boolean }): Promise<{ server: ApiServer; login: { username: string; password: string } | null }> {
  const { config, database, secrets } = env;
  const generated = opts.generateLogin && config.api.auth === 'password' && !config.api.users.length ? await standaloneAdmin(config.dataDir) : null;
  const server = await createApiServer({
    database, dagBag: bag, store: secrets.store, config: config.api, sessionSecret: sessionSecret(config.dataDir),
    host: opts.host, port: opts.port, extraUsers: generated ? [generated.user] : [], healthThresholdMs: config.zombieThresholdMs,
    health: () => healthReport(database, config.zombieThresholdMs),
  });
  return { server, login: generated && { username: generated.username, password: generated.password } };
}

export async function apiServer(port: number | undefined, host: string | undefined): Promise<void> {
  const env = await openEnv({ service: true, migrate: true });
  const bag = await loadBag(env.config);
  const { server } = await startUi(env, bag, { host, port: port ?? env.config.api.port ?? 8080 });
  const who = env.config.api.auth === 'none' ? 'no login (auth: none)' : `${env.config.api.users.length} user(s), ${env.config.api.tokens.length} token(s) from the config`;
  process.stderr.write(`updraft api-server: ${server.url} (UI, /api/v1, /api/v1/openapi.json, /health, /metrics); ${who}; ${env.database.where}\n`);
  await untilSignal(async () => {
    await server.close();
    await env.database.close();
  });
}

/** Prints the scrypt hash of a password given as an argument or on stdin. */
export async function usersHashPassword(password: string | undefined): Promise<void> {
  let pw = password;
  if (pw === undefined) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    pw = Buffer.concat(chunks).toString().replace(/\r?\n$/, '');
  }
  if (!pw) throw new UsageError('give the password with --password or on stdin, e.g. `echo -n secret | updraft users hash-password`');
  out(`${await hashPassword(pw)}\n`);
}
