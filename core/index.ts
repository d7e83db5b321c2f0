/**
 * Updraft core's public entry point. DAG files import the authoring API from here; the
 * scheduler, triggerer and CLI import the runtime and database layer from here too.
 */

// Authoring
export { dag, taskGroup, findCycle, Dag, type DagOptions, type SerializedDag, type SerializedTask } from './authoring/dag.ts';
export { BaseOperator, XComArg, chain, ExecutionMode, baseOptions, type TaskOptions, type TeardownOptions, type Linkable, type TaskGroupRef } from './authoring/operator.ts';
export { task, type FunctionTask, type PartialTask } from './authoring/task.ts';
export { BranchOperator, type BranchOptions, type BranchTarget, type ShortCircuitOptions } from './authoring/branching.ts';
export { type Resolvable } from './authoring/function-task.ts';
export { MappedFunctionOperator, IterateOperator, type IterateOptions, type IterateResult, type ExpandSpec } from './authoring/mapping.ts';
export { semaphore, type Semaphore } from './authoring/semaphore.ts';
export { anySignal } from './authoring/signals.ts';
export { TriggerRule, TRIGGER_RULES, evaluateTriggerRule, type UpstreamCounts, type RuleVerdict } from './authoring/trigger-rules.ts';
export { retryDelayMs, shouldRetry, type RetryPolicy } from './authoring/retry.ts';
export { intervalsToRun, nextFireAfter, validateSchedule, presetToCron, type DataInterval } from './authoring/schedule.ts';
export { ScheduleKind, scheduleKind, nextDueAt } from './authoring/timetables.ts';
export { parseDuration, type Duration } from './authoring/duration.ts';
export type { Context, TaskLogger, TaskInstanceHandle, VariableOptions, PreviousTry, OutletEvents, DagRunControl } from './authoring/context.ts';
export {
  dataset, any, all, Dataset, DatasetAll, DatasetAny, conditionHolds, conditionUris, describeCondition, serializeCondition,
  type DatasetCondition, type DatasetSchedule, type SerializedCondition, type OutletEventData,
} from './authoring/dataset.ts';
export { TaskDeferred, FAIL_METHOD, type DeferOptions } from './authoring/deferral.ts';

// Triggers
export { BaseTrigger, type TriggerRuntime, type SerializedTrigger, type TriggerClass } from './triggers/base-trigger.ts';
export { TriggerEvent, TaskSuccessEvent, TaskFailedEvent } from './triggers/events.ts';
export { registerTrigger, registeredTriggerNames, triggerClass, deserializeTrigger, serializeTrigger } from './triggers/registry.ts';
export { KwargsCodec, canonicalJson } from './triggers/secrets.ts';
export type { TriggerOutcome, AppliedTi } from './db/queries/trigger-events.ts';
export { DateTimeTrigger, TimeDeltaTrigger, FileTrigger, ExternalTaskTrigger, DagRunStateTrigger, type DagRunStateEvent } from './triggers/builtin/index.ts';

// Sensors
export { BaseSensorOperator, SensorTimeout, DateTimeSensor, TimeDeltaSensor, FileSensor, ExternalTaskSensor, type SensorOptions } from './sensors/index.ts';
export {
  PokeSensorOperator, FunctionSensor, SensorMode, type PokeResult, type PokeSensorOptions, type FunctionSensorOptions, type SensorTask,
} from './sensors/index.ts';
export { TaskRescheduled, RESCHEDULE_METHOD } from './authoring/reschedule.ts';
export { TriggerDagRunOperator, TRIGGER_RUN_ID_KEY, type TriggerDagRunOperatorOptions } from './operators/trigger-dag-run.ts';
export { CallbackKind, type TaskCallback, type TaskCallbacks, type DagCallback, type DagCallbacks, type DagRunContext } from './authoring/callbacks.ts';

// Errors
export * from './errors.ts';

// Runtime
export { DagBag, importDagFile, oneLine } from './runtime/dag-bag.ts';
export { findJsonProblem, storableText } from './model/json-value.ts';
export { Worker, type WorkerOptions } from './runtime/worker.ts';
export { Batcher } from './runtime/batcher.ts';
export { Rerunner } from './runtime/rerunner.ts';
export { evaluateRun } from './runtime/dependencies.ts';
export { triggerDagRun, type TriggeredRun } from './runtime/runs.ts';
export { changeTaskInstance, changeDagRun, TiAction, type TiSelector } from './runtime/ti-control.ts';
export { TaskState, RunState, RunType, JobType, FINISHED_TASK_STATES } from './model/states.ts';
export { loadConfig, type UpdraftConfig, type ApiConfig, type ApiRole } from './config.ts';

// Connections, variables, secrets, XCom storage
export { CONN_ID, connectionSchema, validateConnection, connectionView, InvalidConnectionError, type Connection, type ConnectionInput } from './connections/connection.ts';
export { registerConnectionType, connectionType, connectionTypes, type ConnectionType, type ConnectionTestResult } from './connections/types.ts';
export { parseConnectionUri, formatConnectionUri, ConnectionUriError, type ConnectionFields } from './connections/uri.ts';
export {
  SecretAccessDenied, EnvSecretsBackend, FileSecretsBackend, DatabaseSecretsBackend, loadCustomBackend, envConnName, envVarName,
  type SecretsBackend, type RawConnection, type CustomBackendSpec,
} from './connections/backends.ts';
export { Secrets, ConnectionNotFoundError, SecretsLookupError, toConnection, type SecretsOptions } from './connections/secrets.ts';
export { SecretStore, type StoredVariable } from './connections/store.ts';
export { openSecrets, defaultSecrets, type SecretsSetup } from './connections/setup.ts';
export { SecretBox, SecretKeyError } from './secrets/secret-box.ts';
export { masker, maskSecret, isSensitiveKey, Masker, SENSITIVE_KEY_WORDS } from './secrets/masker.ts';
export { variableValue } from './runtime/task-context.ts';
export { renderTaskFields } from './runtime/render-task.ts';
export { renderFields, buildTemplateContext, TemplateRenderError, type RenderRequest, type TemplateLookups } from './templates/render.ts';
export { configureTaskLogs, taskLogSettings, readTaskLogs, logFilePath, type TaskLogSettings } from './runtime/log-store.ts';
export { XComStorage, xcomStorage, configureXComStorage, XComCodec, XComStorageError, type StoredXCom } from './xcom/storage.ts';
export { FileXComStore, type XComBlobStore } from './xcom/file-store.ts';

// Database
export { openDatabase, notify, Channel, redact, dbErrorMessage, isTransientDbError, type Database, type Db, type Tx, type Executor } from './db/client.ts';
export * as queries from './db/queries/index.ts';
export type { RunQueueLimits } from './db/queries/dag-runs.ts';
export { tagLimitSchema, type TagLimit } from './authoring/limits.ts';
export * as schema from './db/schema.ts';

// Metrics
export { ServiceMetrics, serveMetrics } from './metrics/service-metrics.ts';
export { processRegistry, providerRequests, countProviderRequest, dagRunDuration, observeRunsClosed } from './metrics/process-metrics.ts';
export { WorkerMetrics } from './runtime/worker-metrics.ts';
