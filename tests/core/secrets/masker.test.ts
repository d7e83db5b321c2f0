import { generateKeyPairSync } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import {
  isSensitiveKey,
  Masker,
  maskSecret,
  masker,
  MIN_SECRET_LENGTH,
  SENSITIVE_KEY_WORDS,
} from '../../../core/secrets/masker.ts';

const privateKey = generateKeyPairSync('rsa', { modulusLength: 1024 })
  .privateKey.export({ type: 'pkcs8', format: 'pem' })
  .toString();

const serviceAccount = {
  type: 'service_account',
  project_id: 'updraft-demo',
  private_key_id: '0a1b2c3d4e5f60718293a4b5c6d7e8f901234567',
  private_key: privateKey,
  client_email: 'runner@updraft-demo.iam.gserviceaccount.com',
  client_id: '104857600000000000001',
  token_uri: 'https://oauth2.googleapis.com/token',
};

const bodyLines = privateKey.trim().split('\n').filter((l) => !l.startsWith('-----'));

describe('isSensitiveKey', () => {
  it('matches the key words as case-insensitive substrings', () => {
    for (const key of ['password', 'MY_API_KEY', 'clientSecret', 'Authorization', 'db_passwd', 'gcp_keyfile_dict', 'aws_credentials']) {
      expect(isSensitiveKey(key), key).toBe(true);
    }
    for (const key of ['host', 'login', 'region', 'client_email', 'timeout']) {
      expect(isSensitiveKey(key), key).toBe(false);
    }
  });

  it('covers the documented words', () => {
    expect(SENSITIVE_KEY_WORDS).toEqual(expect.arrayContaining(['password', 'access_token', 'service_account', 'passphrase']));
    expect(MIN_SECRET_LENGTH).toBe(5);
  });
});

describe('Masker', () => {
  it('returns text unchanged when nothing is registered', () => {
    const m = new Masker();
    expect(m.mask('nothing to hide')).toBe('nothing to hide');
    expect(m.size).toBe(0);
  });

  it('ignores values shorter than the minimum length', () => {
    const m = new Masker();
    m.add('a');
    m.add('1234');
    m.addConnection({ password: 'abcd', extra: { api_key: 'xyz' } });
    expect(m.size).toBe(0);
    expect(m.mask('a 1234 abcd xyz')).toBe('a 1234 abcd xyz');
  });

  it('masks a password and its URL-encoded and JSON-escaped forms', () => {
    const m = new Masker();
    const password = 'p@ss w/rd "quoted"\\';
    m.addConnection({ password, extra: null });
    expect(m.mask(`login with ${password} now`)).toBe('login with *** now');
    expect(m.mask(`postgres://bob:${encodeURIComponent(password)}@db/app`)).toBe('postgres://bob:***@db/app');
    expect(m.mask(`body=${new URLSearchParams({ password }).toString()}`)).toBe('body=password=***');
    expect(m.mask(JSON.stringify({ password }))).toBe('{"password":"***"}');
  });

  it('masks extras by key name only', () => {
    const m = new Masker();
    m.addConnection({ password: null, extra: { region: 'europe-west1', MY_API_KEY: 'key-0123456789', clientSecret: 'shh-shh-shh' } });
    expect(m.mask('europe-west1 key-0123456789 shh-shh-shh')).toBe('europe-west1 *** ***');
  });

  it('treats the whole subtree of a sensitive key as secret, at any depth', () => {
    const m = new Masker();
    m.addFrom({
      options: { retries: 'three-times', auth: { Authorization: 'Bearer abcdefgh' } },
      credentials: { user: 'service-user', nested: ['first-value', { deep: 'second-value' }] },
    });
    expect(m.mask('three-times Bearer abcdefgh service-user first-value second-value')).toBe('three-times *** *** *** ***');
    expect(m.size).toBe(4);
  });

  it('walks a value given under a sensitive key', () => {
    const m = new Masker();
    m.addFrom('top-secret-value', 'api_token');
    m.addFrom('plain-value', 'region');
    expect(m.mask('top-secret-value plain-value')).toBe('*** plain-value');
  });

  describe('service-account JSON', () => {
    function check(m: Masker) {
      expect(m.mask(`key id ${serviceAccount.private_key_id}`)).toBe('key id ***');
      expect(m.mask(privateKey)).toBe('***');
      expect(m.mask(JSON.stringify(privateKey))).toBe('"***"');
      for (const line of bodyLines.filter((l) => l.length >= 16)) expect(m.mask(`> ${line}`)).toBe('> ***');
      expect(m.mask(`acting as ${serviceAccount.client_email} in updraft-demo`)).toBe(`acting as ${serviceAccount.client_email} in updraft-demo`);
      expect(m.mask('POST https://oauth2.googleapis.com/token')).toBe('POST https://oauth2.googleapis.com/token');
    }

    it('masks the secret fields of an object', () => {
      const m = new Masker();
      m.addFrom({ keyfile_dict: serviceAccount });
      check(m);
    });

    it('masks the secret fields of a JSON string, under any key', () => {
      const m = new Masker();
      m.addFrom({ keyfile_json: JSON.stringify(serviceAccount) });
      check(m);
      const n = new Masker();
      n.addFrom({ sa: JSON.stringify(serviceAccount, null, 2) });
      check(n);
    });

    it('masks a key pasted with its newlines still escaped', () => {
      const m = new Masker();
      m.add(JSON.stringify(privateKey).slice(1, -1));
      expect(m.mask(bodyLines[0])).toBe('***');
    });

    it('never registers the armor lines', () => {
      const m = new Masker();
      m.add(privateKey);
      expect(m.mask('-----BEGIN PRIVATE KEY-----')).toBe('-----BEGIN PRIVATE KEY-----');
    });
  });

  it('masks overlapping secrets fully, whatever the order they were added', () => {
    for (const order of [['secret', 'secret-and-more'], ['secret-and-more', 'secret']]) {
      const m = new Masker();
      for (const s of order) m.add(s);
      expect(m.mask('x secret-and-more y secret z')).toBe('x *** y *** z');
    }
  });

  it('picks up secrets added after the first mask', () => {
    const m = new Masker();
    m.add('first-secret');
    expect(m.mask('first-secret second-secret')).toBe('*** second-secret');
    m.add('second-secret');
    expect(m.mask('first-secret second-secret')).toBe('*** ***');
  });

  it('treats regular expression characters in secrets literally', () => {
    const m = new Masker();
    m.add('a.b*c(d)[e]$');
    expect(m.mask('aXbbbc(d)[e]$ a.b*c(d)[e]$')).toBe('aXbbbc(d)[e]$ ***');
  });

  describe('maskValue', () => {
    it('returns a masked deep copy, leaving the original alone', () => {
      const m = new Masker();
      m.add('hunter2-long');
      const when = new Date(0);
      const original = {
        message: 'connected with hunter2-long',
        count: 3,
        when,
        headers: { Authorization: 'Bearer short', accept: 'json' },
        items: [{ note: 'hunter2-long', db_password: 123456 }, null],
        token: null,
      };
      const copy = m.maskValue(original);
      expect(copy).toEqual({
        message: 'connected with ***',
        count: 3,
        when,
        headers: { Authorization: '***', accept: 'json' },
        items: [{ note: '***', db_password: '***' }, null],
        token: null,
      });
      expect(copy.when).toBe(when);
      expect(original.headers.Authorization).toBe('Bearer short');
      expect(original.items[0]).toEqual({ note: 'hunter2-long', db_password: 123456 });
    });

    it('keeps cycles as cycles', () => {
      const m = new Masker();
      const a: Record<string, unknown> = { name: 'a' };
      a.self = a;
      const copy = m.maskValue(a);
      expect(copy).not.toBe(a);
      expect(copy.self).toBe(copy);
    });
  });

  it('hands its secrets to another masker with secrets() and addAll()', () => {
    const m = new Masker();
    m.add('one-secret');
    m.add(privateKey);
    m.add('x');
    expect(m.secrets()).toEqual(['one-secret', privateKey]);
    const other = new Masker();
    other.addAll(structuredClone(m.secrets()));
    expect(other.size).toBe(2);
    expect(other.mask(`one-secret ${bodyLines[0]}`)).toBe('*** ***');
  });

  it('forgets everything on clear()', () => {
    const m = new Masker();
    m.add('forgotten-secret');
    m.clear();
    expect(m.size).toBe(0);
    expect(m.mask('forgotten-secret')).toBe('forgotten-secret');
  });
});

describe('the process-wide masker', () => {
  afterEach(() => masker.clear());

  it('is fed by maskSecret', () => {
    maskSecret('runtime-token-42');
    expect(masker.mask('got runtime-token-42')).toBe('got ***');
  });
});
