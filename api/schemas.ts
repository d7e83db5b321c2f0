/**
 * The REST API's shapes: one zod schema per resource, used for request validation, for the
 * handlers' types and for the OpenAPI document. Times are ISO-8601 strings in UTC.
 */
import { z } from '@hono/zod-openapi';

const time = z.string().nullable();
const json = z.unknown();

export const errorSchema = z.object({
  error: z.object({ status: z.number().int(), code: z.string(), message: z.string(), detail: json.optional() }),
}).openapi('Error');

export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).default(0),
});

const paged = <T extends z.ZodTypeAny>(key: string, item: T) => z.object({ [key]: z.array(item), total: z.number().int() } as Record<string, z.ZodTypeAny>);

export const runSummarySchema = z.object({ runId: z.string(), state: z.string(), logicalDate: time, runType: z.string() }).openapi('RunSummary');

export const dagSchema = z.object({
  dagId: z.string(), description: z.string().nullable(), schedule: z.string().nullable(), timezone: z.string(),
  isPaused: z.boolean(), tags: z.array(z.string()), fileloc: z.string(), lastParsedAt: time,
  nextRun: time, latestRuns: z.array(runSummarySchema),
}).openapi('Dag');
export const dagsSchema = paged('dags', dagSchema).openapi('DagList');

export const taskSchema = z.object({
  taskId: z.string(), operator: z.string(), mode: z.string(), upstream: z.array(z.string()), downstream: z.array(z.string()),
  groupId: z.string().nullable(), mapped: z.string().nullable(), triggerRule: z.string(), retries: z.number(), pool: z.string(),
  outlets: z.array(z.string()),
}).openapi('Task');

export const dagDetailSchema = dagSchema.extend({
  tasks: z.array(taskSchema), datasetSchedule: json, maxActiveRuns: z.number().nullable(), maxActiveTasks: z.number().nullable(),
  catchup: z.boolean().nullable(), paramsSchema: json.describe('JSON Schema of the run conf, from the DAG\'s params; null when it takes none'),
  importError: z.string().nullable(),
}).openapi('DagDetail');

export const dagPatchSchema = z.object({ isPaused: z.boolean() }).openapi('DagPatch');

export const runSchema = z.object({
  runId: z.string(), dagId: z.string(), state: z.string(), runType: z.string(), logicalDate: time, dataIntervalStart: time,
  dataIntervalEnd: time, queuedAt: time, startDate: time, endDate: time, conf: json, tags: z.record(z.string(), z.string()),
}).openapi('DagRun');
export const runsSchema = paged('runs', runSchema).openapi('DagRunList');

export const triggerRunSchema = z.object({
  conf: z.record(z.string(), z.unknown()).default({}),
  runId: z.string().min(1).max(250).regex(/^[\w.:+-]+$/, 'run ids use letters, digits and . _ : + -').optional(),
}).openapi('TriggerRun');

export const runActionSchema = z.object({
  action: z.enum(['clear', 'success', 'failed']),
  onlyFailed: z.boolean().default(false).describe('clear: only failed and upstream-failed TIs'),
}).openapi('RunAction');

export const gridSchema = z.object({
  dagId: z.string(),
  tasks: z.array(z.object({ taskId: z.string(), groupId: z.string().nullable(), mapped: z.boolean() })),
  runs: z.array(z.object({ runId: z.string(), state: z.string(), runType: z.string(), logicalDate: time, startDate: time, endDate: time })),
  cells: z.array(z.array(z.union([z.string(), z.record(z.string(), z.number()), z.null()])))
    .describe('cells[run][task]: the TI state, a count per state for a mapped task, or null when the run has no TI for the task'),
}).openapi('Grid');

export const tiSchema = z.object({
  taskId: z.string(), mapIndex: z.number().int(), state: z.string(), tryNumber: z.number().int(), maxTries: z.number().int(),
  operator: z.string(), pool: z.string(), queue: z.string(), workerId: z.string().nullable(), startDate: time, endDate: time,
  duration: z.number().nullable(), error: z.string().nullable(), nextRetryAt: time, rescheduleDate: time, progress: json,
}).openapi('TaskInstance');
export const tisSchema = paged('taskInstances', tiSchema).openapi('TaskInstanceList');

export const triggerInfoSchema = z.object({
  id: z.number().int(), name: z.string(), kwargs: json, triggererId: z.string().nullable(), createdDate: time, ageSeconds: z.number(),
}).openapi('TriggerInfo');

export const tiDetailSchema = tiSchema.extend({
  dagId: z.string(), runId: z.string(),
  tries: z.array(z.object({ tryNumber: z.number().int(), state: z.string(), workerId: z.string().nullable(), startDate: time, endDate: time, duration: z.number().nullable(), error: z.string().nullable() })),
  trigger: triggerInfoSchema.nullable(),
}).openapi('TaskInstanceDetail');

export const tiActionSchema = z.object({
  action: z.enum(['clear', 'success', 'failed']),
  downstream: z.boolean().default(false),
}).openapi('TaskInstanceAction');

export const actionResultSchema = z.object({ changed: z.number().int(), killedTriggers: z.number().int() }).openapi('ActionResult');

export const logsSchema = z.object({
  tryNumber: z.number().int().nullable(),
  lines: z.array(z.object({ id: z.number(), tryNumber: z.number().int(), ts: time, level: z.string(), message: z.string(), source: z.string() })),
  more: z.boolean().describe('more lines follow; ask again with after=<last id>'),
}).openapi('Logs');

export const xcomsSchema = z.object({
  xcoms: z.array(z.object({ mapIndex: z.number().int(), key: z.string(), value: json, createdAt: time })),
}).openapi('XComList');

export const renderedSchema = z.object({
  tryNumber: z.number().int().nullable(),
  fields: z.record(z.string(), json),
  sqlFields: z.array(z.string()).describe('dotted paths of the fields that hold SQL, shown formatted'),
}).openapi('RenderedFields');

export const triggersSchema = paged('triggers', z.object({
  id: z.number().int(), name: z.string(), triggererId: z.string().nullable(), createdDate: time,
  waiting: z.array(z.object({ dagId: z.string(), runId: z.string(), taskId: z.string(), mapIndex: z.number().int() })),
})).openapi('TriggerList');

export const jobsSchema = z.object({
  jobs: z.array(z.object({
    id: z.string(), jobType: z.string(), hostname: z.string(), pid: z.number().int(), state: z.string(), startDate: time,
    latestHeartbeat: time, endDate: time, healthy: z.boolean(), ageSeconds: z.number(), triggers: z.number().int(),
    capacity: z.number().nullable(), running: z.number().nullable(), loopLagMs: z.number().nullable(),
  })),
}).openapi('JobList');

export const poolsSchema = z.object({
  pools: z.array(z.object({ name: z.string(), slots: z.number().int(), used: z.number().int(), open: z.number().nullable(), includeDeferred: z.boolean(), description: z.string().nullable() })),
}).openapi('PoolList');

export const connectionsSchema = z.object({
  connections: z.array(z.object({ connId: z.string(), connType: z.string(), host: z.string().nullable(), port: z.number().nullable(), login: z.string().nullable(), schema: z.string().nullable(), password: z.string().nullable(), extra: json, description: z.string().nullable() })),
}).openapi('ConnectionList');

export const variablesSchema = z.object({
  variables: z.array(z.object({ key: z.string(), value: z.string(), description: z.string().nullable() })),
}).openapi('VariableList');

export const datasetsSchema = z.object({
  datasets: z.array(z.object({
    uri: z.string(), producingTasks: z.array(z.string()), consumingDags: z.array(z.string()), events: z.number().int(),
    lastEvent: z.object({ timestamp: time, source: z.string().nullable() }).nullable(),
  })),
}).openapi('DatasetList');

export const datasetEventsSchema = z.object({
  events: z.array(z.object({
    id: z.number().int(), timestamp: time, extra: json, sourceDagId: z.string().nullable(), sourceRunId: z.string().nullable(),
    sourceTaskId: z.string().nullable(), sourceMapIndex: z.number().nullable(), triggeredRuns: z.array(z.string()),
  })),
}).openapi('DatasetEventList');

export const importErrorsSchema = z.object({
  importErrors: z.array(z.object({ fileloc: z.string(), error: z.string(), timestamp: time })),
}).openapi('ImportErrorList');

export const meSchema = z.object({
  username: z.string(), role: z.enum(['viewer', 'admin']), csrfToken: z.string().nullable(), auth: z.enum(['password', 'none']),
}).openapi('Me');

export const loginSchema = z.object({ username: z.string().min(1), password: z.string().min(1) }).openapi('Login');
