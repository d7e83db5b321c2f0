/**
 * A deferring custom operator with its own trigger. `WaitForCountdown` defers at once: the
 * worker slot is freed while `CountdownTrigger` ticks in the triggerer, and a fresh operator
 * resumes in `executeComplete` with the event. A function task then defers twice in a row
 * through `ctx.defer`, re-running from the top with `ctx.event` set each time.
 */
import { z } from 'zod';
import { setTimeout as sleep } from 'node:timers/promises';
import { dag, task, BaseOperator, BaseTrigger, TriggerEvent, registerTrigger, type Context, type TaskOptions } from 'updraft';

const countdownKwargs = z.object({ label: z.string(), ticks: z.number().int().positive(), intervalMs: z.number().int().positive() });

export class CountdownTrigger extends BaseTrigger<z.infer<typeof countdownKwargs>> {
  static readonly triggerName = 'example.CountdownTrigger';
  static readonly kwargsSchema = countdownKwargs;

  async *run() {
    for (let i = 0; i < this.kwargs.ticks; i++) await sleep(this.kwargs.intervalMs, undefined, { signal: this.runtime.signal });
    yield new TriggerEvent({ label: this.kwargs.label, ticks: this.kwargs.ticks });
  }
}
registerTrigger(CountdownTrigger);

class WaitForCountdown extends BaseOperator {
  constructor(options: TaskOptions, private readonly ticks: number) {
    super(options);
  }

  async execute(ctx: Context) {
    ctx.log.info('deferring for %d ticks', this.ticks);
    this.defer({ trigger: new CountdownTrigger({ label: ctx.taskId, ticks: this.ticks, intervalMs: 100 }), method: 'executeComplete', timeout: '1m' });
  }

  async executeComplete(ctx: Context, event: { label: string; ticks: number }) {
    ctx.log.info('resumed after %d ticks', event.ticks);
    return event;
  }
}

const twoStep = task('two_step', async (_: void, ctx) => {
  const step = (ctx.resumeKwargs.step as number | undefined) ?? 0;
  if (step < 2) {
    ctx.defer({ trigger: new CountdownTrigger({ label: `step-${step}`, ticks: 2, intervalMs: 50 }), kwargs: { step: step + 1 } });
  }
  return { steps: step, lastEvent: ctx.event };
});

export default dag({ dagId: 'deferrable_custom', schedule: '@daily', startDate: '2026-01-01T00:00:00Z', tags: ['example', 'deferrable'] }, () => {
  const wait = new WaitForCountdown({ taskId: 'wait_for_countdown' }, 5);
  wait.then(twoStep());
});
