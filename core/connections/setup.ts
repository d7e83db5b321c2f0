/** Builds a process's secrets lookup and store from the config, in Updraft's fixed backend order. */
import path from 'node:path';
import type { UpdraftConfig } from '../config.ts';
import type { Database } from '../db/client.ts';
import { SecretBox } from '../secrets/secret-box.ts';
import { DatabaseSecretsBackend, EnvSecretsBackend, FileSecretsBackend, loadCustomBackend, type SecretsBackend } from './backends.ts';
import { Secrets, type SecretsOptions } from './secrets.ts';
import { SecretStore } from './store.ts';

export interface SecretsSetup {
  secrets: Secrets;
  store: SecretStore;
}

type SecretsConfig = Pick<UpdraftConfig, 'secretsBackend' | 'secretsFile' | 'secretsCacheTtlMs' | 'secretKeyFile' | 'configFile'>;

/** Custom backend, then the secrets file, then the environment, then the metadata database. */
export async function openSecrets(config: SecretsConfig, database: Database, options: SecretsOptions = {}): Promise<SecretsSetup> {
  const store = new SecretStore(database, () => SecretBox.withKeyFile(config.secretKeyFile));
  const backends: SecretsBackend[] = [];
  if (config.secretsBackend) backends.push(await loadCustomBackend(config.secretsBackend, config.configFile ? path.dirname(config.configFile) : process.cwd()));
  if (config.secretsFile) backends.push(new FileSecretsBackend(config.secretsFile));
  backends.push(new EnvSecretsBackend(), new DatabaseSecretsBackend(store));
  return { secrets: new Secrets(backends, { ttlMs: config.secretsCacheTtlMs, ...options }), store };
}

/** The default for a process given no config: environment, then the database (key file in .updraft). */
export function defaultSecrets(database: Database): SecretsSetup {
  const store = new SecretStore(database, () => SecretBox.withKeyFile(path.resolve('.updraft', 'secret.key')));
  return { secrets: new Secrets([new EnvSecretsBackend(), new DatabaseSecretsBackend(store)]), store };
}
