/**
 * Trigger kwargs at rest. With UPDRAFT_SECRET_KEY set, kwargs are sealed with AES-256-GCM
 * (node:crypto) as `enc:v1:<key id>:<iv>:<tag>:<ciphertext>`; without it they are stored as
 * JSON. Older keys listed in UPDRAFT_SECRET_KEY_PREVIOUS still open old rows, and
 * `updraft triggers rotate-key` re-seals every row with the current key.
 * The dedup hash is an HMAC under the current key, so it leaks nothing about the kwargs.
 */
import { SecretBox } from '../secrets/secret-box.ts';

export { SecretKeyError } from '../secrets/secret-box.ts';

export class KwargsCodec {
  private readonly box: SecretBox;

  constructor(secret: string | null | undefined, previous: string[] = []) {
    this.box = new SecretBox(secret, previous);
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env): KwargsCodec {
    const previous = (env.UPDRAFT_SECRET_KEY_PREVIOUS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    return new KwargsCodec(env.UPDRAFT_SECRET_KEY || null, previous);
  }

  get encrypting(): boolean {
    return this.box.encrypting;
  }

  seal(kwargs: Record<string, unknown>): string {
    return this.box.seal(canonicalJson(kwargs));
  }

  open(stored: string): Record<string, unknown> {
    return JSON.parse(this.box.open(stored, 'trigger kwargs')) as Record<string, unknown>;
  }

  /** Identity of (name, kwargs) for dedup. */
  hash(name: string, kwargs: Record<string, unknown>): string {
    return this.box.hash(`${name}\u0000${canonicalJson(kwargs)}`);
  }

  /** Whether a stored value is already sealed with the current key (or plain with none). */
  isCurrent(stored: string): boolean {
    return this.box.isCurrent(stored);
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
