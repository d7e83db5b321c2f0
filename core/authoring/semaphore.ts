/**
 * `semaphore(n)`: a counting semaphore for async code, like Python's asyncio.Semaphore. At
 * most `n` holders at once; waiters are served first in, first out. `iterate()` bounds its
 * items with one, and DAG authors can use it to cap calls to a rate-limited API.
 */

export interface Semaphore {
  /** Resolves with a release function once a permit is free. Releasing twice is harmless. */
  acquire(): Promise<() => void>;
  /** A release function if a permit is free right now (and nobody waits), else null; never waits. */
  tryAcquire(): (() => void) | null;
  /** Run `fn` holding a permit, releasing it however `fn` ends. */
  run<T>(fn: () => Promise<T> | T): Promise<T>;
  /** Permits free right now. */
  readonly available: number;
  /** Callers queued in acquire(). */
  readonly waiting: number;
}

export function semaphore(n: number): Semaphore {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    throw new RangeError(`semaphore(n) needs a positive integer number of permits, got ${typeof n === 'number' ? n : typeof n}`);
  }
  let free = n;
  // A queue with a moving head: shift() on a large array is O(n) per call.
  let queue: ((release: () => void) => void)[] = [];
  let head = 0;

  const makeRelease = () => {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (head < queue.length) {
        // Hand the permit straight to the next waiter, so a late acquire() cannot barge in.
        const next = queue[head];
        queue[head++] = undefined as never;
        if (head === queue.length) {
          queue = [];
          head = 0;
        } else if (head > 1024 && head * 2 > queue.length) {
          queue = queue.slice(head);
          head = 0;
        }
        next(makeRelease());
      } else {
        free++;
      }
    };
  };

  const tryAcquire = (): (() => void) | null => {
    if (free > 0 && head >= queue.length) {
      free--;
      return makeRelease();
    }
    return null;
  };

  const acquire = (): Promise<() => void> => {
    const release = tryAcquire();
    return release ? Promise.resolve(release) : new Promise((resolve) => queue.push(resolve));
  };

  return {
    acquire,
    tryAcquire,
    async run<T>(fn: () => Promise<T> | T): Promise<T> {
      const release = await acquire();
      try {
        return await fn();
      } finally {
        release();
      }
    },
    get available() {
      return free;
    },
    get waiting() {
      return queue.length - head;
    },
  };
}
