/**
 * The built-in triggers. Importing this module registers every one of them, so a triggerer
 * (or a worker deserializing a trigger) only needs this one import to know their names.
 */
export {
  DateTimeTrigger, TimeDeltaTrigger, MIN_POKE_INTERVAL_MS, isoInstantSchema, sleep, sleepUntil, toIsoInstant,
  type DateTimeTriggerKwargs,
} from './date-time.ts';
export { FileTrigger, FILE_POKE_INTERVAL_MS, matchFiles, type FileTriggerKwargs, type FileTriggerInput } from './file.ts';
export {
  ExternalTaskTrigger, EXTERNAL_POKE_INTERVAL_MS, DEFAULT_ALLOWED_STATES, DEFAULT_FAILED_STATES,
  type ExternalTaskTriggerKwargs, type ExternalTaskTriggerInput, type ExternalTaskEvent,
} from './external-task.ts';
export { DagRunStateTrigger, DAG_RUN_POKE_INTERVAL_MS, type DagRunStateTriggerKwargs, type DagRunStateEvent } from './dag-run-state.ts';
