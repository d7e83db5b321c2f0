/**
 * Triggerer metrics in Prometheus text (prom-client), served on `--metrics-port`:
 * triggers running, capacity left, events / failures / timeouts, loop lag, blocked-loop
 * count by trigger name, and queue delay (trigger created → claimed). The endpoint also serves
 * the process-wide metrics (provider requests made by triggers, DAG parse times).
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import { ServiceMetrics } from '../core/index.ts';

export class TriggererMetrics extends ServiceMetrics {
  readonly running = new Gauge({ name: 'updraft_triggers_running', help: 'Triggers running in this triggerer', registers: [this.registry] });
  readonly capacityLeft = new Gauge({ name: 'updraft_triggerer_capacity_left', help: 'Free trigger slots', registers: [this.registry] });
  readonly events = new Counter({ name: 'updraft_triggers_events_total', help: 'Trigger events applied', registers: [this.registry] });
  readonly failures = new Counter({ name: 'updraft_triggers_failed_total', help: 'Triggers that raised or ended without an event', registers: [this.registry] });
  readonly timeouts = new Counter({ name: 'updraft_triggers_timeouts_total', help: 'Task deferrals that timed out', registers: [this.registry] });
  readonly blocked = new Counter({ name: 'updraft_triggers_blocked_main_thread_total', help: 'Times a trigger blocked the event loop past the threshold', labelNames: ['trigger'], registers: [this.registry] });
  readonly loopLag = new Histogram({
    name: 'updraft_triggerer_loop_lag_seconds', help: 'Event-loop lag, sampled every 100 ms',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2], registers: [this.registry],
  });
  readonly queueDelay = new Histogram({ name: 'updraft_trigger_queue_delay_seconds', help: 'Trigger created → claimed by a triggerer', buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 30], registers: [this.registry] });

  constructor() {
    super('updraft_triggerer_');
  }
}
