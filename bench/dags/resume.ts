/**
 * Benchmark DAG and trigger for the triggerer bench. `bench.StampedTimer` waits for its moment
 * with one timer and reports when it actually fired; `bench_resume` has 2,000 tasks that defer
 * on it (moments 5 ms apart, so they fire at about 200/s) and record, as their XCom, how long
 * after the event was emitted their resume method started on a worker.
 */
import { z } from 'zod';
import { dag, BaseOperator, BaseTrigger, TriggerEvent, registerTrigger, type Context, type TaskOptions } from 'updraft';

const stampedKwargs = z.object({ moment: z.number() });

export class StampedTimer extends BaseTrigger<z.infer<typeof stampedKwargs>> {
  static readonly triggerName = 'bench.StampedTimer';
  static readonly kwargsSchema = stampedKwargs;

  async *run() {
    const wait = this.kwargs.moment - Date.now();
    if (wait > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, wait);
        this.runtime.signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
      });
    }
    yield new TriggerEvent({ moment: this.kwargs.moment, firedAt: Date.now() });
  }
}
registerTrigger(StampedTimer);

class ResumeProbe extends BaseOperator {
  constructor(options: TaskOptions, private readonly index: number) {
    super(options);
  }

  async execute(ctx: Context<{ base: number; spacingMs: number }>) {
    this.defer({ trigger: new StampedTimer({ moment: ctx.params.base + this.index * ctx.params.spacingMs }) });
  }

  async executeComplete(_ctx: Context, event: { firedAt: number }) {
    return Date.now() - event.firedAt;
  }
}

export default dag({
  dagId: 'bench_resume', schedule: null, maxActiveTasks: 5000,
  params: z.object({ base: z.number(), spacingMs: z.number().default(5) }),
}, () => {
  for (let i = 0; i < 2000; i++) new ResumeProbe({ taskId: `probe_${i}` }, i);
});
