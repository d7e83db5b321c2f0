/**
 * XCom values are JSON. This walks a value and names the first thing JSON cannot carry
 * faithfully, so the error can say exactly where it is instead of silently losing data.
 */

export type JsonProblem = { at: string; what: string } | null;

// PostgreSQL stores neither NUL characters (in text or jsonb) nor unpaired UTF-16 surrogates (in jsonb).
const NUL = /\u0000/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function stringProblem(s: string): string | null {
  if (NUL.test(s)) return 'a string containing a NUL character (\\u0000)';
  if (LONE_SURROGATE.test(s)) return 'a string containing an unpaired UTF-16 surrogate';
  return null;
}

export function findJsonProblem(value: unknown, at = '$', seen = new Set<object>()): JsonProblem {
  switch (typeof value) {
    case 'string': {
      const what = stringProblem(value);
      return what ? { at, what } : null;
    }
    case 'boolean': return null;
    case 'number': return Number.isFinite(value) ? null : { at, what: `the number ${value}` };
    case 'undefined': return at === '$' ? null : { at, what: 'undefined' };
    case 'bigint': return { at, what: `a BigInt (${value}n)` };
    case 'function': return { at, what: 'a function' };
    case 'symbol': return { at, what: 'a symbol' };
  }
  if (value === null) return null;
  const obj = value as object;
  if (seen.has(obj)) return { at, what: 'a circular reference' };
  seen.add(obj);
  try {
    if (Array.isArray(obj)) {
      for (let i = 0; i < obj.length; i++) {
        const p = findJsonProblem(obj[i], `${at}[${i}]`, seen);
        if (p) return p;
      }
      return null;
    }
    const proto = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) {
      return { at, what: `an instance of ${obj.constructor?.name ?? 'a class'}` };
    }
    for (const [k, v] of Object.entries(obj)) {
      const keyProblem = stringProblem(k);
      if (keyProblem) return { at, what: `a key that is ${keyProblem}` };
      const p = findJsonProblem(v, `${at}.${k}`, seen);
      if (p) return p;
    }
    return null;
  } finally {
    seen.delete(obj);
  }
}

/**
 * Text as PostgreSQL can store it: NUL characters become the visible escape "\\u0000" and
 * unpaired surrogates become U+FFFD. For logs and error messages, which are kept, not refused.
 */
export function storableText(s: string): string {
  if (!NUL.test(s) && !LONE_SURROGATE.test(s)) return s;
  return s.replace(/\u0000/g, '\\u0000').replace(new RegExp(LONE_SURROGATE.source, 'g'), '\ufffd');
}
