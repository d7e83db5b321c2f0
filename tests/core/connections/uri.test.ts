import { describe, expect, it } from 'vitest';
import {
  ConnectionUriError,
  formatConnectionUri,
  parseConnectionUri,
  type ConnectionFields,
} from '../../../core/connections/uri.ts';
import { UpdraftError } from '../../../core/errors.ts';

function conn(fields: Partial<ConnectionFields>): ConnectionFields {
  return { connType: 'postgres', host: null, schema: null, login: null, password: null, port: null, extra: {}, ...fields };
}

function parseError(uri: string, where?: string): ConnectionUriError {
  try {
    parseConnectionUri(uri, where);
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectionUriError);
    expect(err).toBeInstanceOf(UpdraftError);
    return err as ConnectionUriError;
  }
  throw new Error(`expected ${uri} to be refused`);
}

function formatError(fields: Partial<ConnectionFields>): ConnectionUriError {
  try {
    formatConnectionUri(conn(fields));
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectionUriError);
    return err as ConnectionUriError;
  }
  throw new Error('expected the connection to be refused');
}

describe('parseConnectionUri: Airflow examples', () => {
  it('reads every part of the documented example, and writes it back unchanged', () => {
    const uri = 'my-conn-type://login:password@host:1234/schema?param1=val1&param2=val2';
    expect(parseConnectionUri(uri)).toEqual({
      connType: 'my_conn_type', host: 'host', schema: 'schema', login: 'login', password: 'password', port: 1234,
      extra: { param1: 'val1', param2: 'val2' },
    });
    expect(formatConnectionUri(parseConnectionUri(uri))).toBe(uri);
  });

  it('reads __extra__ JSON, including non-string values', () => {
    const uri = 'google-cloud-platform://?__extra__=%7B%22key_path%22%3A+%22%2Fkeys%2Fkey.json%22%2C+%22num_retries%22%3A+5%2C+%22opts%22%3A+%7B%22a%22%3A+%5Btrue%2C+null%5D%7D%7D';
    const parsed = parseConnectionUri(uri);
    expect(parsed).toEqual(conn({ connType: 'google_cloud_platform', extra: { key_path: '/keys/key.json', num_retries: 5, opts: { a: [true, null] } } }));
    const written = formatConnectionUri(parsed);
    expect(written.startsWith('google-cloud-platform://?__extra__=')).toBe(true);
    expect(parseConnectionUri(written)).toEqual(parsed);
  });

  it('reads a host that carries its own scheme', () => {
    const uri = 'http://https://api.example.com:443/v1';
    expect(parseConnectionUri(uri)).toEqual(conn({ connType: 'http', host: 'https://api.example.com', port: 443, schema: 'v1' }));
    expect(formatConnectionUri(parseConnectionUri(uri))).toBe(uri);
    const withLogin = 'http://https://user:pw@api.example.com/v1?timeout=5';
    expect(parseConnectionUri(withLogin)).toMatchObject({ host: 'https://api.example.com', login: 'user', password: 'pw', extra: { timeout: '5' } });
    expect(formatConnectionUri(parseConnectionUri(withLogin))).toBe(withLogin);
  });

  it('lowercases the scheme and maps postgresql to postgres, as Airflow does', () => {
    expect(parseConnectionUri('POSTGRESQL://h').connType).toBe('postgres');
    expect(parseConnectionUri('Google-Cloud-Platform://').connType).toBe('google_cloud_platform');
  });

  it('keeps host case (Airflow lowercases it)', () => {
    expect(parseConnectionUri('mysql://DB.Example.COM').host).toBe('DB.Example.COM');
  });
});

describe('percent-encoding', () => {
  const nasty = 'p/@:%?#&=+; "\'!*()~';

  it('writes every reserved character of a password encoded, and reads it back', () => {
    const fields = conn({ host: 'db', login: 'me@corp', password: nasty, schema: 'a/b c' });
    const uri = formatConnectionUri(fields);
    expect(uri).toBe('postgres://me%40corp:p%2F%40%3A%25%3F%23%26%3D%2B%3B%20%22%27%21%2A%28%29~@db/a%2Fb%20c');
    expect(parseConnectionUri(uri)).toEqual(fields);
  });

  it('round-trips non-ASCII and spaces', () => {
    const fields = conn({ host: 'höst.example', login: 'jürgen müller', password: 'pässwörd 密码 😀', schema: 'données' });
    expect(parseConnectionUri(formatConnectionUri(fields))).toEqual(fields);
    expect(parseConnectionUri('postgres://j%C3%BCrgen:p%C3%A4ss%20w@h').password).toBe('päss w');
  });

  it("reads '+' in the query string as a space, and '%2B' as '+'", () => {
    expect(parseConnectionUri('http://h?q=a+b%2Bc%20d').extra).toEqual({ q: 'a b+c d' });
  });

  it('reads repeated query keys as an array of strings, and writes them back repeated', () => {
    const uri = 'http://h?tag=a&tag=b&one=1&flag';
    expect(parseConnectionUri(uri).extra).toEqual({ tag: ['a', 'b'], one: '1', flag: '' });
    expect(formatConnectionUri(parseConnectionUri(uri))).toBe('http://h?tag=a&tag=b&one=1&flag=');
  });

  it('keeps a __proto__ key as an ordinary extra', () => {
    const extra = parseConnectionUri('http://h?__proto__=x').extra;
    expect(Object.getPrototypeOf(extra)).toBe(Object.prototype);
    expect(Object.keys(extra)).toEqual(['__proto__']);
  });
});

describe('parts that are absent or unusual', () => {
  it('reads empty parts as null', () => {
    expect(parseConnectionUri('postgres://')).toEqual(conn({}));
    expect(parseConnectionUri('postgres://u:@h:/')).toEqual(conn({ login: 'u', host: 'h' }));
    expect(parseConnectionUri('postgres://@h?')).toEqual(conn({ host: 'h' }));
  });

  it('reads a password with no login as login null', () => {
    const uri = 'postgres://:secret@h:5432';
    expect(parseConnectionUri(uri)).toEqual(conn({ password: 'secret', host: 'h', port: 5432 }));
    expect(formatConnectionUri(parseConnectionUri(uri))).toBe(uri);
  });

  it("writes a port with neither host nor login in Airflow's @:port form", () => {
    expect(formatConnectionUri(conn({ port: 5432 }))).toBe('postgres://@:5432');
    expect(parseConnectionUri('postgres://@:5432')).toEqual(conn({ port: 5432 }));
    expect(parseConnectionUri('postgres://:5432').port).toBe(5432);
  });

  it('reads and writes IPv6 hosts in brackets', () => {
    const uri = 'postgres://u:p@[::1]:5432/db';
    expect(parseConnectionUri(uri)).toEqual(conn({ login: 'u', password: 'p', host: '::1', port: 5432, schema: 'db' }));
    expect(formatConnectionUri(parseConnectionUri(uri))).toBe(uri);
    expect(formatConnectionUri(conn({ host: 'fe80::1%eth0' }))).toBe('postgres://fe80%3A%3A1%25eth0');
  });

  it('reads empty strings back as null (a URI cannot tell them apart)', () => {
    const uri = formatConnectionUri(conn({ host: '', login: '', password: '', schema: '' }));
    expect(uri).toBe('postgres://');
    expect(parseConnectionUri(uri)).toEqual(conn({}));
  });

  it('trims whitespace around the URI, as env files leave it', () => {
    expect(parseConnectionUri('  postgres://h/db\n').schema).toBe('db');
  });
});

describe('errors', () => {
  const secret = 'hunter2SECRET';

  it.each([
    ['a port above 65535', `postgres://u:${secret}@h:99999/db`, 'port is not a whole number from 1 to 65535'],
    ['port 0', `postgres://u:${secret}@h:0`, 'port is not a whole number'],
    ['a port that is not a number', `postgres://u:${secret}@h:abc`, 'port is not a whole number'],
    ['an unencoded / in the password', `postgres://u:${secret}/x@h/db`, "raw '@' after the host"],
    ['an unencoded ? in the password', `postgres://u:${secret}?x@h/db`, 'port is not a whole number'],
    ['an unencoded # in the password', `postgres://u:${secret}#x@h/db`, "raw '#'"],
    ['a non-object __extra__', `http://u:${secret}@h?__extra__=%5B1%2C2%5D`, '__extra__ is JSON but not an object'],
    ['a null __extra__', `http://u:${secret}@h?__extra__=null`, '__extra__ is JSON but not an object'],
    ['__extra__ that is not JSON', `http://u:${secret}@h?__extra__=%7Bnope`, '__extra__ is not valid JSON'],
    ['__extra__ beside other parameters', `http://u:${secret}@h?a=1&__extra__=%7B%7D`, 'combined with other query parameters'],
    ['malformed percent-encoding', `postgres://u:${secret}%zz@h`, 'password has malformed percent-encoding'],
    ['an unclosed IPv6 bracket', `postgres://u:${secret}@[::1:5432`, 'IPv6 host'],
    ['no scheme', `u:${secret}@h/db`, 'there is no connection type'],
    ['a scheme without //', `postgres:u:${secret}@h`, 'there is no connection type'],
  ])('refuses %s, saying where and what to do, without the password', (_label, uri, problem) => {
    const err = parseError(uri, 'environment variable UPDRAFT_CONN_MY_DB');
    expect(err.message).toContain(problem);
    expect(err.message.startsWith('environment variable UPDRAFT_CONN_MY_DB: ')).toBe(true);
    expect(err.message).toContain('***');
    expect(err.message).toMatch(/; \w/);
    expect(err.message).not.toContain(secret);
    expect(err.message).not.toContain('hunter2');
  });

  it('names the default source and explains the expected shape', () => {
    expect(parseError('not a uri').message).toBe(
      'connection URI: there is no connection type in "not a uri"; write the connection as type://[login[:password]@]host[:port][/schema][?key=value&...]',
    );
    expect(parseError('').message).toContain('there is no connection type');
  });

  it('refuses connections that cannot be written', () => {
    expect(formatError({ connType: 'My Type' }).message).toContain('connType "My Type" cannot be written as a URI scheme; use lowercase letters');
    expect(formatError({ connType: 'google-cloud' }).message).toContain('cannot be written as a URI scheme');
    expect(formatError({ connType: '' }).message).toContain('cannot be written as a URI scheme');
    expect(formatError({ port: 0 }).message).toContain('port 0 is not a whole number from 1 to 65535');
    expect(formatError({ port: 70000 }).message).toContain('port 70000');
    expect(formatError({ port: 1.5 }).message).toContain('port 1.5');
    expect(formatError({ extra: { a: undefined } }).message).toContain('extra holds undefined at $.a');
    expect(formatError({ extra: { n: 10n } }).message).toContain('a BigInt');
    expect(formatError({ extra: [] as unknown as Record<string, unknown> }).message).toContain('extra is not an object');
    const surrogate = formatError({ password: `${'hunter2'}\ud800` }).message;
    expect(surrogate).toContain('the password contains an unpaired UTF-16 surrogate');
    expect(surrogate).not.toContain('hunter2');
  });
});

// Deterministic pseudo-random numbers, so a failure reproduces.
function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('round trip over generated connections', () => {
  const random = mulberry32(20240611);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const chance = (p: number): boolean => random() < p;
  const pool = [...'aZ09-_.~/@:%?#&=+;,$!*()[] \'"`\\<>{}|^\tä密码é😀🚀ß', '%2F', '%%', '://', '+%20', '__extra__'];
  const text = (): string => Array.from({ length: 1 + Math.floor(random() * 12) }, () => pick(pool)).join('');
  const maybe = (): string | null => (chance(0.3) ? null : text());

  function json(depth: number): unknown {
    switch (Math.floor(random() * (depth > 2 ? 4 : 6))) {
      case 0: return text();
      case 1: return (Math.floor(random() * 2e6) - 1e6) / pick([1, 1000]);
      case 2: return chance(0.5);
      case 3: return null;
      case 4: return Array.from({ length: Math.floor(random() * 4) }, () => json(depth + 1));
      default: return object(depth + 1);
    }
  }
  function object(depth: number): Record<string, unknown> {
    const keys = Array.from({ length: Math.floor(random() * 4) }, () => (chance(0.1) ? pick(['__extra__', '__proto__', '']) : text()));
    return Object.fromEntries(keys.map((k) => [k, json(depth)]));
  }
  function extra(): Record<string, unknown> {
    switch (Math.floor(random() * 4)) {
      case 0: return {};
      case 1: return Object.fromEntries(Array.from({ length: 1 + Math.floor(random() * 4) }, () => [text(), chance(0.5) ? '' : text()]));
      case 2: return Object.fromEntries([[text(), text()], [text(), [text(), text(), ...(chance(0.5) ? [text()] : [])]]]);
      default: return object(0);
    }
  }
  function host(): string | null {
    switch (Math.floor(random() * 6)) {
      case 0: return null;
      case 1: return `${pick(['https', 'HTTP', 'git+ssh'])}://${text()}`;
      case 2: return pick(['::1', 'fe80::1', '2001:db8::8a2e:370:7334', 'https://', 'a b://c', '[x]']);
      default: return text();
    }
  }

  const connections: ConnectionFields[] = Array.from({ length: 5000 }, () => ({
    connType: pick(['postgres', 'http', 'google_cloud_platform', 'my_conn_type', 's3+x', 'a.b', 'x1']),
    host: host(),
    schema: maybe(),
    login: maybe(),
    password: maybe(),
    port: chance(0.5) ? null : 1 + Math.floor(random() * 65535),
    extra: extra(),
  }));

  it('reads back every field of what it writes, and writes that back identically', () => {
    let checked = 0;
    for (const fields of connections) {
      const uri = formatConnectionUri(fields);
      const parsed = parseConnectionUri(uri);
      expect(parsed, uri).toEqual(fields);
      expect(formatConnectionUri(parsed), uri).toBe(uri);
      checked++;
    }
    expect(checked).toBe(5000);
  });

  it('never writes a raw character that would end or split a part', () => {
    for (const fields of connections.slice(0, 500)) {
      const uri = formatConnectionUri(fields);
      expect(uri).not.toMatch(/[#\s"'<>\\^`{|}]/);
      const afterSchemes = uri.replace(/^[a-z0-9+.-]+:\/\/([A-Za-z][A-Za-z0-9+.-]*:\/\/)?/, '');
      for (const separator of ['@', '/', '?']) expect(afterSchemes.split(separator).length, uri).toBeLessThanOrEqual(2);
    }
  });
});
