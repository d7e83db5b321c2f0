/**
 * The tasks of a dbt project. A model is a BigQueryInsertJobOperator whose query is the setup
 * task's XCom for it (a template field, so `updraft tasks render` and every try's log show the
 * SQL), deferrable by default, with the provider's deterministic job ids, reattach and cancel
 * on kill. A seed is a load job from its CSV file. A test is a query job that fails its task
 * when rows come back. Model and seed tasks emit their table's dataset on success.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BaseOperator, dataset, type Context, type TaskOptions } from 'updraft';
import {
  BigQueryHook, BigQueryInsertJobOperator, BigQueryInsertJobTrigger, BigQueryJobError, completeInsertJob, jobIdFor, pollerFor, sanitizeLabel, summaryOf,
  type BigQueryJob, type BigQueryJobEvent, type BigQueryJobSummary, type PollMode,
} from 'updraft/providers/bigquery';
import type { CompiledMeta } from './compile.ts';
import { DbtCompilerError, DbtTestFailure } from './errors.ts';
import type { DbtNode } from './project.ts';
import { seedSchema } from './seeds.ts';
import { checkSchemaChange } from './schema-change.ts';

export interface DbtNodeTaskOptions extends TaskOptions {
  connId: string;
  /** The setup task's id, whose XComs hold this run's compiled SQL. */
  compileTaskId: string;
  node: DbtNode;
  projectName: string;
  /** Absolute path of the seed's CSV file (seeds only). */
  seedFile?: string;
  deferrable?: boolean;
  location?: string;
  pollCapMs?: number;
  pollMode?: PollMode;
  /** Extra job labels. */
  labels?: Record<string, string>;
}

const OWN = ['connId', 'compileTaskId', 'node', 'projectName', 'seedFile', 'deferrable', 'location', 'pollCapMs', 'pollMode', 'labels'];

/** Everything but the dbt keys, for the task's base options. */
function taskOptionsOf(o: DbtNodeTaskOptions): TaskOptions {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !OWN.includes(k))) as unknown as TaskOptions;
}

export type DbtTaskResult = BigQueryJobSummary & { relation: string; node: string };

/** The compiled node's metadata, or the error that stopped its compile. */
async function compiledMeta(ctx: Context, compileTaskId: string, node: DbtNode): Promise<CompiledMeta> {
  const meta = await ctx.ti.xcomPull<CompiledMeta>(compileTaskId, `${node.uniqueId}.meta`);
  if (!meta) throw new DbtCompilerError(`${node.path}: this run has no compiled SQL for ${node.name}; the setup task "${compileTaskId}" did not produce it (clear it to compile again)`);
  if (meta.error) throw new DbtCompilerError(meta.error);
  return meta;
}

function result(node: DbtNode, meta: CompiledMeta, summary: BigQueryJobSummary): DbtTaskResult {
  return { ...summary, node: node.uniqueId, relation: `${meta.relation.project}.${meta.relation.dataset}.${meta.relation.table}` };
}

/** `bigquery://<project>/<dataset>/<table>`: the table a model or seed wrote, with its real schema and alias. */
export function datasetUri(meta: CompiledMeta): string {
  return `bigquery://${meta.relation.project}/${meta.relation.dataset}/${meta.relation.table}`;
}

function emitDataset(ctx: Context, meta: CompiledMeta, summary: BigQueryJobSummary): void {
  ctx.outletEvents.add(dataset(datasetUri(meta)), { jobId: summary.jobId, statementType: summary.statementType });
}

abstract class DbtQueryOperator extends BigQueryInsertJobOperator {
  readonly node: DbtNode;
  readonly compileTaskId: string;

  constructor(options: DbtNodeTaskOptions, kind: string) {
    super({
      ...taskOptionsOf(options), connId: options.connId, location: options.location, deferrable: options.deferrable ?? true,
      pollCapMs: options.pollCapMs, pollMode: options.pollMode,
      configuration: { query: { query: `{{ ti.xcom_pull(task_ids='${options.compileTaskId}', key='${options.node.uniqueId}') }}`, useLegacySql: false } },
      labels: { ...options.labels, [`dbt-${kind}`]: sanitizeLabel(options.node.name), 'dbt-project': sanitizeLabel(options.projectName) },
    });
    this.node = options.node;
    this.compileTaskId = options.compileTaskId;
  }

  protected abstract finish(ctx: Context, meta: CompiledMeta, summary: BigQueryJobSummary): Promise<BigQueryJobSummary>;

  override async execute(ctx: Context): Promise<BigQueryJobSummary> {
    const meta = await compiledMeta(ctx, this.compileTaskId, this.node);
    await this.prepare(ctx, meta);
    return this.finish(ctx, meta, await super.execute(ctx));
  }

  override async executeComplete(ctx: Context, event: BigQueryJobEvent): Promise<BigQueryJobSummary> {
    const meta = await compiledMeta(ctx, this.compileTaskId, this.node);
    return this.finish(ctx, meta, await super.executeComplete(ctx, event));
  }

  protected async prepare(_ctx: Context, _meta: CompiledMeta): Promise<void> {}
}

export class DbtModelOperator extends DbtQueryOperator {
  constructor(options: DbtNodeTaskOptions) {
    super(options, 'model');
  }

  /** on_schema_change: compare the new columns with the table's before an incremental statement. */
  protected override async prepare(ctx: Context, meta: CompiledMeta): Promise<void> {
    const script = await checkSchemaChange(ctx, this.connId, this.node, meta);
    if (script) (this.configuration.query as { query: string }).query = script;
  }

  protected override async finish(ctx: Context, meta: CompiledMeta, summary: BigQueryJobSummary): Promise<DbtTaskResult> {
    emitDataset(ctx, meta, summary);
    return result(this.node, meta, summary);
  }
}

export class DbtTestOperator extends DbtQueryOperator {
  constructor(options: DbtNodeTaskOptions) {
    super(options, 'test');
  }

  /** dbt's semantics: rows back mean failures; `severity: warn` logs them instead. */
  protected override async finish(ctx: Context, _meta: CompiledMeta, summary: BigQueryJobSummary): Promise<BigQueryJobSummary & { failures: number }> {
    const hook = await BigQueryHook.create(ctx, this.connId);
    const page = await hook.getQueryResults(summary.jobId, { location: summary.location ?? undefined, maxResults: 5 });
    const failures = Number(page.totalRows ?? page.rows.length);
    if (failures > 0) {
      if (String(this.node.config.severity ?? 'error').toLowerCase() === 'warn') {
        ctx.log.warn('dbt test %s: %d failing row(s) (severity warn); first rows: %s', this.node.name, failures, JSON.stringify(page.rows));
      } else {
        throw new DbtTestFailure(this.node.name, failures, page.rows);
      }
    } else {
      ctx.log.info('dbt test %s passed', this.node.name);
    }
    return { ...summary, failures };
  }
}

/** A seed: its CSV uploaded as a load job (WRITE_TRUNCATE), the schema from column_types or inferred. */
export class DbtSeedOperator extends BaseOperator {
  readonly node: DbtNode;
  readonly compileTaskId: string;
  readonly connId: string;
  readonly seedFile: string;
  readonly location?: string;
  readonly deferrable: boolean;
  readonly pollCapMs?: number;
  readonly pollMode?: PollMode;

  constructor(options: DbtNodeTaskOptions) {
    super(taskOptionsOf(options));
    this.node = options.node;
    this.compileTaskId = options.compileTaskId;
    this.connId = options.connId;
    this.seedFile = options.seedFile!;
    this.location = options.location;
    this.deferrable = options.deferrable ?? true;
    this.pollCapMs = options.pollCapMs;
    this.pollMode = options.pollMode;
  }

  async execute(ctx: Context): Promise<DbtTaskResult> {
    const meta = await compiledMeta(ctx, this.compileTaskId, this.node);
    const hook = await BigQueryHook.create(ctx, this.connId);
    const location = this.location ?? hook.location;
    const csv = readFileSync(this.seedFile, 'utf8');
    const delimiter = String(this.node.config.delimiter ?? ',');
    const fields = seedSchema(this.node.path, csv, this.node.config.column_types, delimiter);
    const load = { sourceFormat: 'CSV', skipLeadingRows: 1, fieldDelimiter: delimiter, writeDisposition: 'WRITE_TRUNCATE', schema: { fields } };
    const jobId = jobIdFor(ctx, ctx.tryNumber, { load, sha: createHash('sha256').update(csv).digest('hex'), table: meta.relation });
    let job: BigQueryJob;
    try {
      job = await hook.loadFile(this.seedFile, meta.relation.dataset, meta.relation.table, load, { jobId, location });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
      job = await hook.getJob(jobId, location);
    }
    ctx.log.info('dbt seed %s: load job %s (%s) into %s', this.node.name, jobId, job.status.state, datasetUri(meta));
    if (job.status.state !== 'DONE') {
      const where = job.jobReference.location ?? location;
      const createdAt = Number(job.statistics?.creationTime ?? Date.now());
      if (this.deferrable) {
        this.defer({ trigger: new BigQueryInsertJobTrigger({ connId: this.connId, jobId, location: where, createdAt, pollCapMs: this.pollCapMs, pollMode: this.pollMode, cancelOnKill: true }), method: 'executeComplete' });
      }
      job = await pollerFor(hook, where, { capMs: this.pollCapMs, mode: this.pollMode, log: ctx.log }).wait(jobId, createdAt, ctx.signal);
    }
    if (job.status.errorResult) throw new BigQueryJobError(jobId, job.status.errorResult, job.status.errors ?? []);
    const summary = summaryOf(job);
    emitDataset(ctx, meta, summary);
    return result(this.node, meta, summary);
  }

  async executeComplete(ctx: Context, event: BigQueryJobEvent): Promise<DbtTaskResult> {
    const meta = await compiledMeta(ctx, this.compileTaskId, this.node);
    const summary = await completeInsertJob(ctx, this.connId, event);
    emitDataset(ctx, meta, summary);
    return result(this.node, meta, summary);
  }
}
