/**
 * AES-256-GCM sealing of secrets at rest (node:crypto): trigger kwargs, connection passwords
 * and extras, variable values. A sealed value reads `enc:v1:<key id>:<iv>:<tag>:<ciphertext>`.
 * The current key seals; older keys listed in UPDRAFT_SECRET_KEY_PREVIOUS still open, so keys
 * rotate without downtime (`updraft rotate-key` re-seals every row with the current key).
 *
 * Connections and variables are always sealed: without UPDRAFT_SECRET_KEY, a key file in the
 * data folder is created on first use (mode 0600). Every process that reads them must share
 * that key, so a deployment on several hosts sets UPDRAFT_SECRET_KEY instead.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { UpdraftError } from '../errors.ts';

export class SecretKeyError extends UpdraftError {}

interface Key {
  id: string;
  bytes: Buffer;
}

function deriveKey(secret: string): Key {
  const bytes = createHash('sha256').update(secret, 'utf8').digest();
  return { id: createHash('sha256').update(bytes).digest('hex').slice(0, 8), bytes };
}

const previousKeys = (env: NodeJS.ProcessEnv) => (env.UPDRAFT_SECRET_KEY_PREVIOUS ?? '').split(',').map((s) => s.trim()).filter(Boolean);

export class SecretBox {
  private readonly current: Key | null;
  private readonly all = new Map<string, Key>();

  constructor(secret: string | null | undefined, previous: string[] = [], readonly keySource = 'UPDRAFT_SECRET_KEY') {
    this.current = secret ? deriveKey(secret) : null;
    for (const s of [secret, ...previous]) {
      if (s) {
        const k = deriveKey(s);
        this.all.set(k.id, k);
      }
    }
  }

  /** UPDRAFT_SECRET_KEY when set; none otherwise (values are then stored as they are). */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): SecretBox {
    return new SecretBox(env.UPDRAFT_SECRET_KEY || null, previousKeys(env));
  }

  /** UPDRAFT_SECRET_KEY when set, else the key file (created if missing): always a key. */
  static withKeyFile(keyFile: string, env: NodeJS.ProcessEnv = process.env): SecretBox {
    if (env.UPDRAFT_SECRET_KEY) {
      // Values sealed with the key file before UPDRAFT_SECRET_KEY was set still open, so rotate-key can move them.
      const fileKey = existsSync(keyFile) ? readFileSync(keyFile, 'utf8').trim() : '';
      return new SecretBox(env.UPDRAFT_SECRET_KEY, [...previousKeys(env), ...(fileKey ? [fileKey] : [])]);
    }
    if (!existsSync(keyFile)) {
      mkdirSync(path.dirname(keyFile), { recursive: true });
      try {
        writeFileSync(keyFile, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
      } catch (err) {
        // Another process created it first: use theirs.
        if ((err as { code?: string }).code !== 'EEXIST') throw err;
      }
    }
    const secret = readFileSync(keyFile, 'utf8').trim();
    if (!secret) throw new SecretKeyError(`the secret key file ${keyFile} is empty; delete it to have a new key made, or set UPDRAFT_SECRET_KEY`);
    return new SecretBox(secret, previousKeys(env), `the key file ${keyFile}`);
  }

  get encrypting(): boolean {
    return this.current !== null;
  }

  seal(text: string): string {
    if (!this.current) return text;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.current.bytes, iv);
    const ct = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
    return ['enc', 'v1', this.current.id, iv.toString('base64'), cipher.getAuthTag().toString('base64'), ct.toString('base64')].join(':');
  }

  /** The text of a sealed value (a value that isn't sealed is returned as it is). */
  open(stored: string, what = 'value'): string {
    if (!stored.startsWith('enc:')) return stored;
    const [, version, keyId, iv, tag, ct] = stored.split(':');
    if (version !== 'v1') throw new SecretKeyError(`${what}: unknown encryption format "${version}"`);
    const key = this.all.get(keyId);
    if (!key) {
      throw new SecretKeyError(`${what}: sealed with key ${keyId}, which is neither ${this.keySource} nor in UPDRAFT_SECRET_KEY_PREVIOUS; set the key it was written with (every process must share one key)`);
    }
    const decipher = createDecipheriv('aes-256-gcm', key.bytes, Buffer.from(iv, 'base64'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    try {
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64')), decipher.final()]).toString('utf8');
    } catch (err) {
      throw new SecretKeyError(`${what} cannot be opened with key ${keyId}: it was altered or is corrupt`, { cause: err });
    }
  }

  /** A keyed hash: equal inputs match without the hash revealing them. */
  hash(text: string): string {
    return this.current ? createHmac('sha256', this.current.bytes).update(text).digest('hex') : createHash('sha256').update(text).digest('hex');
  }

  /** Whether a stored value is sealed with the current key (or plain, with no key). */
  isCurrent(stored: string): boolean {
    return this.current ? stored.startsWith(`enc:v1:${this.current.id}:`) : !stored.startsWith('enc:');
  }
}
