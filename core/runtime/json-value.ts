/**
 * XCom values are JSON. This walks a value and names the first thing JSON cannot carry
 * faithfully, so the error can say exactly where it is instead of silently losing data.
 */

export type JsonProblem = { at: string; what: string } | null;

export function findJsonProblem(value: unknown, at = '$', seen = new Set<object>()): JsonProblem {
  switch (typeof value) {
    case 'string': case 'boolean': return null;
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
      const p = findJsonProblem(v, `${at}.${k}`, seen);
      if (p) return p;
    }
    return null;
  } finally {
    seen.delete(obj);
  }
}
