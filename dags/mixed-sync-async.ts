/**
 * A CPU-bound sync task beside 100 concurrent async I/O tasks. The sync task runs in a worker
 * thread, so the async tasks keep their pace on the worker's event loop while it spins.
 */
import { threadId } from 'node:worker_threads';
import { dag, task, chain } from 'updraft';

const crunch = task('crunch_numbers', ({ n }: { n: number }, ctx) => {
  // Deliberately CPU-bound: count primes below n.
  let count = 0;
  for (let i = 2; i < n; i++) {
    let prime = true;
    for (let j = 2; j * j <= i; j++) if (i % j === 0) { prime = false; break; }
    if (prime) count++;
  }
  ctx.log.info('%d primes below %d (thread %d)', count, n, threadId);
  return { count, threadId };
});

const fetchOne = task('fetch', async ({ i }: { i: number }, ctx) => {
  const started = Date.now();
  await new Promise((r) => setTimeout(r, 100));
  // How late the timer fired tells whether the loop was stalled.
  return { i, lateMs: Date.now() - started - 100, threadId };
});

const report = task('report', ({ lateness, primes }: { lateness: { lateMs: number; threadId: number }[]; primes: { count: number; threadId: number } }, ctx) => {
  const worst = Math.max(...lateness.map((l) => l.lateMs));
  ctx.log.info('primes=%d, worst async timer lateness %d ms over %d tasks', primes.count, worst, lateness.length);
  // Where each kind ran: the sync task in a worker thread, the async ones on the main loop.
  return { primes: primes.count, worstLateMs: worst, syncThread: primes.threadId, asyncThreads: [...new Set(lateness.map((l) => l.threadId))] };
});

export default dag({ dagId: 'mixed_sync_async', schedule: '@daily', startDate: '2026-01-01T00:00:00Z', maxActiveTasks: 128, tags: ['example'] }, () => {
  const primes = crunch({ n: 3_000_000 });
  const fetched = Array.from({ length: 100 }, (_, i) => fetchOne({ i }));
  const r = report({ lateness: fetched, primes });
  chain(primes, r);
});
