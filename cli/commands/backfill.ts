/**
 * `dags backfill`: runs for a DAG's data intervals between two dates, with Airflow 3's
 * reprocess behaviours. Backfill runs are ordinary queued runs of type `backfill` that the
 * scheduler starts; they carry run tags naming the backfill and its max active runs, which the
 * run queue applies as a tag limit. The command plans, queues, and then follows the runs.
 */
import { randomUUID } from 'node:crypto';
import {
  intervalsToRun, queries, scheduleKind, ScheduleKind, RunState, RunType, UpdraftError, type Dag, type Database,
} from '../../core/index.ts';
import { openEnv, loadBag, printJson, table, out } from '../env.ts';
import { UsageError } from '../errors.ts';

export const ReprocessBehavior = { NONE: 'none', FAILED: 'failed', COMPLETED: 'completed' } as const;
export type ReprocessBehavior = (typeof ReprocessBehavior)[keyof typeof ReprocessBehavior];

export interface BackfillInterval {
  logicalDate: Date;
  dataIntervalEnd: Date;
  action: 'create' | 'reprocess' | 'skip';
  /** The run already at this logical date, if any. */
  existing: { runPk: number; runId: string; state: string } | null;
}

/** A backfill larger than this is refused: split it. */
const MAX_INTERVALS = 10_000;

/** The DAG's intervals whose logical date is within [start, end], and what the backfill does with each. */
export async function planBackfill(database: Database, dag: Dag, start: Date, end: Date, reprocess: ReprocessBehavior): Promise<BackfillInterval[]> {
  const kind = dag.schedule === null ? null : scheduleKind(dag.schedule);
  if (dag.schedule === null || (kind !== ScheduleKind.CRON && kind !== ScheduleKind.DURATION)) {
    throw new UpdraftError(`DAG "${dag.dagId}" cannot be backfilled: it has no cron or duration schedule (schedule ${dag.schedule ?? 'null'}); trigger runs with \`updraft dags trigger\` instead`);
  }
  if (start > end) throw new UsageError(`--start ${start.toISOString()} is after --end ${end.toISOString()}`);
  const intervals = intervalsToRun({
    schedule: dag.schedule, timezone: dag.timezone, startDate: start, endDate: end, catchup: true,
    lastIntervalEnd: null, now: new Date(), limit: MAX_INTERVALS + 1,
  });
  if (intervals.length > MAX_INTERVALS) throw new UsageError(`the backfill covers over ${MAX_INTERVALS} intervals; split it into shorter date ranges`);
  const existing = new Map((await queries.dagRuns.runsAtLogicalDates(database.db, dag.dagId, intervals.map((i) => i.start)))
    .map((r) => [r.logicalDate.getTime(), { runPk: r.id, runId: r.runId, state: r.state }]));
  return intervals.map((i) => {
    const run = existing.get(i.start.getTime()) ?? null;
    return { logicalDate: i.start, dataIntervalEnd: i.end, existing: run, action: actionFor(run?.state ?? null, reprocess) };
  });
}

function actionFor(state: string | null, reprocess: ReprocessBehavior): BackfillInterval['action'] {
  if (state === null) return 'create';
  // A queued or running run is never touched.
  if (state === RunState.FAILED && reprocess !== ReprocessBehavior.NONE) return 'reprocess';
  if (state === RunState.SUCCESS && reprocess === ReprocessBehavior.COMPLETED) return 'reprocess';
  return 'skip';
}

/** Queue the plan's runs (in its order, newest first when backwards) in one transaction; returns the backfill id and the runs' pks. */
export async function queueBackfill(database: Database, dag: Dag, plan: BackfillInterval[], opts: { maxActiveRuns: number; runBackwards: boolean }) {
  const backfillId = randomUUID().slice(0, 8);
  const tags = { ...dag.runTags, [queries.dagRuns.BACKFILL_TAG]: backfillId, [queries.dagRuns.BACKFILL_MAX_ACTIVE_TAG]: String(opts.maxActiveRuns) };
  const todo = plan.filter((p) => p.action !== 'skip');
  const runPks = await database.db.transaction(async (tx) => {
    const pks: number[] = [];
    for (const [i, p] of todo.entries()) {
      // The queue starts higher priorities first, then older logical dates; backwards, the plan
      // comes newest first and its order becomes the priorities.
      const priority = opts.runBackwards ? -i : 0;
      if (p.existing) {
        if (await queries.dagRuns.requeueRunForBackfill(tx, p.existing.runPk, tags, priority)) pks.push(p.existing.runPk);
        continue;
      }
      const pk = await queries.dagRuns.createRun(tx, {
        dagId: dag.dagId, runId: `backfill__${p.logicalDate.toISOString()}`, runType: RunType.BACKFILL, priority, tags,
        logicalDate: p.logicalDate, dataIntervalStart: p.logicalDate, dataIntervalEnd: p.dataIntervalEnd, conf: {},
      });
      if (pk !== null) pks.push(pk);
    }
    return pks;
  });
  return { backfillId, runPks };
}

/** Poll the runs until each has finished, reporting counts when they change. */
export async function followBackfill(database: Database, runPks: number[], onProgress: (counts: Record<string, number>) => void, everyMs = 500) {
  let last = '';
  for (;;) {
    const counts: Record<string, number> = { queued: 0, running: 0, success: 0, failed: 0, ...await queries.dagRuns.countRunStates(database.db, runPks) };
    // A run deleted meanwhile counts as failed: it will not finish.
    counts.failed += runPks.length - Object.values(counts).reduce((a, b) => a + b, 0);
    const key = JSON.stringify(counts);
    if (key !== last) onProgress(counts);
    last = key;
    if (counts.success + counts.failed === runPks.length) return counts;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface BackfillArgs {
  start: string | undefined;
  end: string | undefined;
  reprocess: string;
  maxActiveRuns: number;
  runBackwards: boolean;
  dryRun: boolean;
  json: boolean;
}

function dateArg(v: string | undefined, flag: string): Date {
  if (v === undefined) throw new UsageError(`missing ${flag}; give a date such as 2024-01-01 or 2024-01-01T06:00:00Z`);
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new UsageError(`${flag} is not a date: "${v}"; use a date such as 2024-01-01 or 2024-01-01T06:00:00Z`);
  return d;
}

export async function dagsBackfill(dagId: string, args: BackfillArgs): Promise<number> {
  const reprocess = args.reprocess as ReprocessBehavior;
  if (!Object.values(ReprocessBehavior).includes(reprocess)) throw new UsageError(`--reprocess-behavior must be none, failed or completed, got "${args.reprocess}"`);
  const start = dateArg(args.start, '--start');
  const end = dateArg(args.end, '--end');
  const { config, database } = await openEnv();
  try {
    const bag = await loadBag(config);
    const dag = bag.get(dagId);
    const plan = await planBackfill(database, dag, start, end, reprocess);
    const ordered = args.runBackwards ? [...plan].reverse() : plan;
    if (args.dryRun) {
      const rows = ordered.map((p) => ({ logicalDate: p.logicalDate, dataIntervalEnd: p.dataIntervalEnd, action: p.action, existingRun: p.existing && `${p.existing.runId} (${p.existing.state})` }));
      if (args.json) printJson({ dagId, dryRun: true, intervals: rows });
      else out(`${table(rows, ['logicalDate', 'dataIntervalEnd', 'action', 'existingRun'])}\n${rows.filter((r) => r.action !== 'skip').length} of ${rows.length} interval(s) would run (dry run: nothing queued)\n`);
      return 0;
    }
    await database.db.transaction((tx) => queries.dags.syncDagBag(tx, bag.dags.values(), bag.errors));
    const { backfillId, runPks } = await queueBackfill(database, dag, ordered, { maxActiveRuns: args.maxActiveRuns, runBackwards: args.runBackwards });
    process.stderr.write(`backfill ${backfillId} of ${dagId}: ${runPks.length} run(s) queued, ${plan.length - runPks.length} skipped, at most ${args.maxActiveRuns} at once; a scheduler and a worker run them\n`);
    const counts = await followBackfill(database, runPks, (c) => {
      if (!args.json) process.stderr.write(`  ${c.success + c.failed}/${runPks.length} done: ${c.success} succeeded, ${c.failed} failed, ${c.running} running, ${c.queued} queued\n`);
    });
    if (args.json) printJson({ dagId, backfillId, runs: runPks.length, skipped: plan.length - runPks.length, ...counts });
    else out(`backfill ${backfillId}: ${counts.success} succeeded, ${counts.failed} failed\n`);
    return counts.failed ? 1 : 0;
  } finally {
    await database.close();
  }
}
