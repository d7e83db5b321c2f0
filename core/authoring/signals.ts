/**
 * One signal for several: what providers pass down when a call has its own signal and the hook
 * has the task's. The same signal given twice (the task's, as both) is used as it is, so a hot
 * path making thousands of calls creates no `AbortSignal.any` (and no dependant the task's
 * signal keeps) per call.
 */
export function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal | undefined {
  const present = [...new Set(signals.filter((s): s is AbortSignal => s !== undefined))];
  return present.length <= 1 ? present[0] : AbortSignal.any(present);
}
