/** The triggerer service's public entry point. */
export { Triggerer, type TriggererOptions } from './triggerer.ts';
export { TriggererMetrics } from './metrics.ts';
