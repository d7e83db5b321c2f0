import { describe, expect, it } from 'vitest';
import { findJsonProblem } from '../../../core/model/json-value.ts';

class Point {
  constructor(readonly x: number) {}
}

describe('findJsonProblem', () => {
  it('accepts everything JSON carries faithfully', () => {
    for (const value of [null, 'text', '', 0, -1.5, true, false, [], {}, [1, 'a', null, [true]], { a: { b: [{ c: 'd' }] } }]) {
      expect(findJsonProblem(value)).toBeNull();
    }
  });

  it('accepts a top-level undefined (a task that returns nothing)', () => {
    expect(findJsonProblem(undefined)).toBeNull();
  });

  it('accepts objects without a prototype', () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    expect(findJsonProblem({ bare })).toBeNull();
  });

  it('accepts the same object reached twice when it is not a cycle', () => {
    const shared = { v: 1 };
    expect(findJsonProblem({ a: shared, b: [shared, shared] })).toBeNull();
  });

  it.each([
    ['NaN', { rate: Number.NaN }, { at: '$.rate', what: 'the number NaN' }],
    ['Infinity', [1, Number.POSITIVE_INFINITY], { at: '$[1]', what: 'the number Infinity' }],
    ['-Infinity', Number.NEGATIVE_INFINITY, { at: '$', what: 'the number -Infinity' }],
    ['a BigInt', { id: 10n }, { at: '$.id', what: 'a BigInt (10n)' }],
    ['a function', { cb: () => 1 }, { at: '$.cb', what: 'a function' }],
    ['a symbol', [Symbol('s')], { at: '$[0]', what: 'a symbol' }],
    ['a nested undefined property', { a: { b: undefined } }, { at: '$.a.b', what: 'undefined' }],
    ['an undefined array element', [1, undefined], { at: '$[1]', what: 'undefined' }],
    ['a Date', { when: new Date(0) }, { at: '$.when', what: 'an instance of Date' }],
    ['a Map', { m: new Map() }, { at: '$.m', what: 'an instance of Map' }],
    ['a class instance', { p: [new Point(1)] }, { at: '$.p[0]', what: 'an instance of Point' }],
  ])('names %s and where it is', (_label, value, expected) => {
    expect(findJsonProblem(value)).toEqual(expected);
  });

  it('names a circular reference where it closes', () => {
    const node: Record<string, unknown> = { name: 'root', children: [] };
    (node.children as unknown[]).push({ parent: node });
    expect(findJsonProblem(node)).toEqual({ at: '$.children[0].parent', what: 'a circular reference' });
  });

  it('reports the first problem in document order', () => {
    expect(findJsonProblem({ ok: 1, first: [0, Number.NaN], second: 1n })).toEqual({ at: '$.first[1]', what: 'the number NaN' });
  });
});
