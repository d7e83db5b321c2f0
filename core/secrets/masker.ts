/**
 * The process-wide secret masker: every log line and rendered value passes through it so a
 * secret never leaves the process in clear. Like Airflow, it masks by value, not by position:
 * a connection's password is always registered, extras and variables only under key names that
 * look sensitive, and values shorter than MIN_SECRET_LENGTH are left alone because masking
 * "a" or "1234" would ruin every log while hiding almost nothing.
 */

export const SENSITIVE_KEY_WORDS: readonly string[] = Object.freeze([
  'password', 'passwd', 'secret', 'token', 'access_token', 'api_key', 'apikey', 'private_key',
  'authorization', 'credential', 'passphrase', 'keyfile', 'service_account',
]);

export function isSensitiveKey(key: string): boolean {
  const k = key.toLowerCase();
  return SENSITIVE_KEY_WORDS.some((word) => k.includes(word));
}

export const MIN_SECRET_LENGTH = 5;

const MASK = '***';

// A service account's identity and endpoints appear in ordinary GCP logs; masking them would
// hide the project id and client email everywhere, so only its other fields are walked.
const SERVICE_ACCOUNT_PUBLIC_FIELDS = new Set([
  'type', 'project_id', 'client_email', 'client_id', 'auth_uri', 'token_uri',
  'auth_provider_x509_cert_url', 'client_x509_cert_url', 'universe_domain',
]);

// Shorter PEM lines (the tail of the body) are too likely to occur by chance in other text.
const MIN_KEY_LINE_LENGTH = 16;
const PEM_ARMOR = /^-----(BEGIN|END) [^-]+-----$/;

type Plain = Record<string, unknown>;

function isPlainObject(value: unknown): value is Plain {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const isServiceAccount = (obj: Plain) => obj.type === 'service_account' || 'private_key' in obj;

function parseJsonObject(s: string): Plain | null {
  if (!s.trimStart().startsWith('{')) return null;
  try {
    const parsed: unknown = JSON.parse(s);
    return isPlainObject(parsed) ? parsed : null;
  } catch {
    return null;
  }
}

/** The ways a secret is commonly printed: raw, in a URL or form body, inside a JSON string. */
function printedForms(s: string): string[] {
  return [s, encodeURIComponent(s), new URLSearchParams({ s }).toString().slice(2), JSON.stringify(s).slice(1, -1)];
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export class Masker {
  private readonly raw = new Set<string>();
  private readonly patterns = new Set<string>();
  // undefined: stale, rebuild on next mask(); null: nothing to mask.
  private regex: RegExp | null | undefined = null;

  /** Register one secret string (ignored if shorter than MIN_SECRET_LENGTH). */
  add(secret: string): void {
    if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH || this.raw.has(secret)) return;
    this.raw.add(secret);
    const forms = printedForms(secret);
    // A PEM key is often printed line by line, or with its newlines escaped (or already escaped
    // when pasted from a JSON file), so each body line has to mask on its own.
    const lines = secret.split(/\r?\n|\\n/);
    if (lines.length > 1) {
      for (const line of lines.map((l) => l.trim())) {
        if (line.length >= MIN_KEY_LINE_LENGTH && !PEM_ARMOR.test(line)) forms.push(...printedForms(line));
      }
    }
    for (const form of forms) {
      if (!this.patterns.has(form)) {
        this.patterns.add(form);
        this.regex = undefined;
      }
    }
  }

  addAll(secrets: string[]): void {
    for (const s of secrets) this.add(s);
  }

  /**
   * Register the secrets inside a value: strings under sensitive keys (a sensitive key's whole
   * subtree counts), and the secret fields of a Google service-account JSON, object or string.
   */
  addFrom(value: unknown, key?: string): void {
    this.walk(value, key !== undefined && isSensitiveKey(key), new Set());
  }

  /** Register a connection's secrets: its password always, its extra by key name. */
  addConnection(conn: { password?: string | null; extra?: Record<string, unknown> | null }): void {
    if (conn.password) this.add(conn.password);
    if (conn.extra) this.addFrom(conn.extra);
  }

  /** Replace every registered secret in text with '***'. */
  mask(text: string): string {
    if (this.regex === undefined) this.regex = this.build();
    return this.regex === null ? text : text.replace(this.regex, MASK);
  }

  /** Deep copy with strings masked and values under sensitive keys replaced by '***'. */
  maskValue<T>(value: T): T {
    return this.copy(value, new Map()) as T;
  }

  /** The registered secrets as given, for handing to a worker thread's own masker. */
  secrets(): string[] {
    return [...this.raw];
  }

  get size(): number { return this.raw.size; }

  clear(): void {
    this.raw.clear();
    this.patterns.clear();
    this.regex = null;
  }

  private build(): RegExp | null {
    if (this.patterns.size === 0) return null;
    // Longest first, so a secret that contains another is masked whole, not in pieces.
    const sorted = [...this.patterns].sort((a, b) => b.length - a.length);
    return new RegExp(sorted.map(escapeRegExp).join('|'), 'g');
  }

  private walk(value: unknown, secret: boolean, seen: Set<object>): void {
    if (typeof value === 'string') {
      const parsed = parseJsonObject(value);
      if (parsed) this.walk(parsed, secret, seen);
      else if (secret) this.add(value);
      return;
    }
    if (value === null || typeof value !== 'object' || seen.has(value)) return;
    seen.add(value);
    if (Array.isArray(value)) {
      for (const item of value) this.walk(item, secret, seen);
    } else if (isPlainObject(value)) {
      const serviceAccount = isServiceAccount(value);
      for (const [k, v] of Object.entries(value)) {
        if (serviceAccount && SERVICE_ACCOUNT_PUBLIC_FIELDS.has(k)) continue;
        this.walk(v, (secret && !serviceAccount) || isSensitiveKey(k), seen);
      }
    }
    // Only ancestors guard against cycles: a shared object may sit under a sensitive key elsewhere.
    seen.delete(value);
  }

  private copy(value: unknown, copies: Map<object, unknown>): unknown {
    if (typeof value === 'string') return this.mask(value);
    if (value === null || typeof value !== 'object') return value;
    if (copies.has(value)) return copies.get(value);
    if (Array.isArray(value)) {
      const out: unknown[] = [];
      copies.set(value, out);
      for (const item of value) out.push(this.copy(item, copies));
      return out;
    }
    if (!isPlainObject(value)) return value; // a Date or class instance is not ours to take apart
    const out: Plain = Object.create(Object.getPrototypeOf(value));
    copies.set(value, out);
    for (const [k, v] of Object.entries(value)) {
      out[k] = isSensitiveKey(k) && v !== null && v !== undefined ? MASK : this.copy(v, copies);
    }
    return out;
  }
}

/** The one masker of this process; worker threads get their own and are seeded from this one. */
export const masker = new Masker();

/** Mark a value computed at run time (a fetched token, a derived key) as secret for all logs. */
export function maskSecret(value: string): void {
  masker.add(value);
}
