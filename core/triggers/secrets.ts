/**
 * Trigger kwargs at rest. With UPDRAFT_SECRET_KEY set, kwargs are sealed with AES-256-GCM
 * (node:crypto) as `enc:v1:<key id>:<iv>:<tag>:<ciphertext>`; without it they are stored as
 * JSON. Older keys listed in UPDRAFT_SECRET_KEY_PREVIOUS still open old rows, and
 * `updraft triggers rotate-key` re-seals every row with the current key.
 * The dedup hash is an HMAC under the current key, so it leaks nothing about the kwargs.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
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

export class KwargsCodec {
  private readonly current: Key | null;
  private readonly all = new Map<string, Key>();

  constructor(secret: string | null | undefined, previous: string[] = []) {
    this.current = secret ? deriveKey(secret) : null;
    for (const s of [secret, ...previous]) {
      if (s) {
        const k = deriveKey(s);
        this.all.set(k.id, k);
      }
    }
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env): KwargsCodec {
    const previous = (env.UPDRAFT_SECRET_KEY_PREVIOUS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    return new KwargsCodec(env.UPDRAFT_SECRET_KEY || null, previous);
  }

  get encrypting(): boolean {
    return this.current !== null;
  }

  seal(kwargs: Record<string, unknown>): string {
    const json = canonicalJson(kwargs);
    if (!this.current) return json;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.current.bytes, iv);
    const ct = Buffer.concat([cipher.update(json, 'utf8'), cipher.final()]);
    return ['enc', 'v1', this.current.id, iv.toString('base64'), cipher.getAuthTag().toString('base64'), ct.toString('base64')].join(':');
  }

  open(stored: string): Record<string, unknown> {
    if (!stored.startsWith('enc:')) return JSON.parse(stored) as Record<string, unknown>;
    const [, version, keyId, iv, tag, ct] = stored.split(':');
    if (version !== 'v1') throw new SecretKeyError(`trigger kwargs use unknown encryption format "${version}"`);
    const key = this.all.get(keyId);
    if (!key) {
      throw new SecretKeyError(`trigger kwargs are encrypted with key ${keyId}, which is neither UPDRAFT_SECRET_KEY nor in UPDRAFT_SECRET_KEY_PREVIOUS; set the key they were written with`);
    }
    const decipher = createDecipheriv('aes-256-gcm', key.bytes, Buffer.from(iv, 'base64'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    const json = Buffer.concat([decipher.update(Buffer.from(ct, 'base64')), decipher.final()]).toString('utf8');
    return JSON.parse(json) as Record<string, unknown>;
  }

  /** Identity of (name, kwargs) for dedup. */
  hash(name: string, kwargs: Record<string, unknown>): string {
    const text = `${name}\u0000${canonicalJson(kwargs)}`;
    return this.current
      ? createHmac('sha256', this.current.bytes).update(text).digest('hex')
      : createHash('sha256').update(text).digest('hex');
  }

  /** Whether a stored value is already sealed with the current key (or plain with none). */
  isCurrent(stored: string): boolean {
    return this.current ? stored.startsWith(`enc:v1:${this.current.id}:`) : !stored.startsWith('enc:');
  }
}

/** JSON with object keys sorted, so equal kwargs always give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}
