/** Queries grouped by aggregate; services call these instead of writing SQL. */
export * as dagRuns from './dag-runs.ts';
export * as dags from './dags.ts';
export * as taskInstances from './task-instances.ts';
export * as xcom from './xcom.ts';
export * as logs from './logs.ts';
export * as jobs from './jobs.ts';
export * as triggers from './triggers.ts';
export * as triggerEvents from './trigger-events.ts';
export * as pools from './pools.ts';
export * as limits from './limits.ts';
export * as iterate from './iterate.ts';
export * as connections from './connections.ts';
export * as rendered from './rendered.ts';
export * as datasets from './datasets.ts';
export * as cleanup from './cleanup.ts';
export * as callbacks from './callbacks.ts';
export * as runDependencies from './run-dependencies.ts';
