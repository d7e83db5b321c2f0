/** semaphore(n): permits, FIFO hand-off, idempotent release, run(), validation. */
import { describe, expect, it } from 'vitest';
import { semaphore } from '../../core/index.ts';

const tick = () => new Promise((r) => setImmediate(r));

describe('semaphore', () => {
  it('rejects a permit count that is not a positive integer, saying what it got', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity]) {
      expect(() => semaphore(bad), String(bad)).toThrow(/semaphore\(n\) needs a positive integer number of permits, got/);
    }
    expect(() => semaphore('2' as unknown as number)).toThrow(/got string/);
    expect(() => semaphore(0)).toThrow(/got 0$/);
  });

  it('hands out n permits, then queues callers and counts them', async () => {
    const sem = semaphore(2);
    expect(sem.available).toBe(2);
    const r1 = await sem.acquire();
    const r2 = await sem.acquire();
    expect(sem.available).toBe(0);
    let third = false;
    const p3 = sem.acquire().then((r) => { third = true; return r; });
    await tick();
    expect(third).toBe(false);
    expect(sem.waiting).toBe(1);
    r1();
    const r3 = await p3;
    expect(third).toBe(true);
    expect(sem.waiting).toBe(0);
    expect(sem.available).toBe(0);
    r2();
    r3();
    expect(sem.available).toBe(2);
  });

  it('serves waiters first in, first out, and a late caller cannot barge in', async () => {
    const sem = semaphore(1);
    const release = await sem.acquire();
    const order: number[] = [];
    const waiters = [1, 2, 3].map((n) => sem.acquire().then((r) => { order.push(n); return r; }));
    release();
    // The permit went straight to waiter 1, so it is not free for anyone else in the meantime.
    expect(sem.available).toBe(0);
    expect(sem.tryAcquire()).toBeNull();
    const late = sem.acquire().then((r) => { order.push(4); return r; });
    for (const w of [...waiters, late]) (await w)();
    expect(order).toEqual([1, 2, 3, 4]);
    expect(sem.available).toBe(1);
  });

  it('ignores a second release of the same permit', async () => {
    const sem = semaphore(1);
    const release = await sem.acquire();
    release();
    release();
    expect(sem.available).toBe(1);
    const again = await sem.acquire();
    expect(sem.available).toBe(0);
    release();
    expect(sem.available).toBe(0);
    again();
    expect(sem.available).toBe(1);
  });

  it('run() holds a permit for the call and releases it on success and on throw', async () => {
    const sem = semaphore(2);
    let inFlight = 0;
    let max = 0;
    const work = async (i: number) => {
      max = Math.max(max, ++inFlight);
      await new Promise((r) => setTimeout(r, 2));
      inFlight--;
      if (i % 3 === 0) throw new Error(`no ${i}`);
      return i;
    };
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => sem.run(() => work(i))));
    expect(max).toBe(2);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(4);
    expect(results[1]).toEqual({ status: 'fulfilled', value: 1 });
    expect(sem.available).toBe(2);
    expect(sem.waiting).toBe(0);
  });

  it('tryAcquire takes a free permit without waiting', () => {
    const sem = semaphore(1);
    const release = sem.tryAcquire();
    expect(release).toBeTypeOf('function');
    expect(sem.tryAcquire()).toBeNull();
    release!();
    expect(sem.available).toBe(1);
  });

  it('keeps order across many waiters', async () => {
    const sem = semaphore(3);
    const order: number[] = [];
    await Promise.all(Array.from({ length: 3000 }, (_, i) => sem.run(async () => {
      order.push(i);
      await Promise.resolve();
    })));
    expect(order).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    expect(sem.available).toBe(3);
  });
});
