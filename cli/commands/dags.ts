/** `dags list|trigger|test`, `tasks test|logs`, `runs list|show`, `import-errors`, `db migrate`. */
import { and, eq } from 'drizzle-orm';
import { describeCondition, loadConfig, openSecrets, queries, readTaskLogs, schema, triggerDagRun, UnknownTaskError, UpdraftError } from '../../core/index.ts';
import { openEnv, loadBag, printJson, table, applyConfigPools, out } from '../env.ts';
import { runDagLocally } from '../local-run.ts';
import { UsageError } from '../errors.ts';

export function parseConfArg(raw: string | undefined): Record<string, unknown> {
  if (raw === undefined) return {};
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new UsageError(`--conf is not valid JSON (${(err as Error).message}); pass an object such as --conf '{"limit": 5}'`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new UsageError('--conf must be a JSON object such as \'{"limit": 5}\'');
  return value as Record<string, unknown>;
}

export async function dbMigrate(): Promise<void> {
  const { database } = await openEnv({ migrate: true });
  process.stderr.write(`migrated ${database.where}\n`);
  await database.close();
}

export async function dagsList(json: boolean): Promise<void> {
  const { config, database } = await openEnv();
  const bag = await loadBag(config);
  // Paused is database state; a DAG no scheduler has synced yet shows what it will start as.
  const paused = new Map((await queries.dags.listDagRows(database.db).finally(() => database.close())).map((r) => [r.dagId, r.isPaused]));
  const rows = [...bag.dags.values()].sort((a, b) => a.dagId.localeCompare(b.dagId)).map((d) => ({
    dagId: d.dagId, schedule: d.schedule ?? (d.datasetSchedule && `datasets: ${describeCondition(d.datasetSchedule)}`), tasks: d.tasks.size,
    paused: paused.get(d.dagId) ?? d.isPausedUponCreation, fileloc: d.fileloc, tags: d.tags,
  }));
  if (json) printJson({ dags: rows, importErrors: [...bag.errors].map(([fileloc, error]) => ({ fileloc, error })) });
  else {
    out(`${table(rows, ['dagId', 'schedule', 'tasks', 'paused', 'fileloc'])}\n`);
    if (bag.errors.size) process.stderr.write(`${bag.errors.size} file(s) failed to import; run \`updraft import-errors\`\n`);
  }
}

export async function importErrors(json: boolean): Promise<void> {
  const config = loadConfig();
  const bag = await loadBag(config);
  const rows = [...bag.errors].map(([fileloc, error]) => ({ fileloc, error }));
  if (json) printJson(rows);
  else out(rows.length ? `${rows.map((r) => `${r.fileloc}: ${r.error}`).join('\n')}\n` : 'no import errors\n');
}

export async function dagsTrigger(dagId: string, confRaw: string | undefined, runId: string | undefined, priority = 0, tagArgs: string[] = []): Promise<void> {
  const conf = parseConfArg(confRaw);
  const tags = Object.fromEntries(tagArgs.map((t) => {
    const eq = t.indexOf('=');
    if (eq <= 0) throw new UsageError(`--tag must look like key=value, got "${t}"`);
    return [t.slice(0, eq), t.slice(eq + 1)];
  }));
  const { config, database } = await openEnv();
  try {
    const bag = await loadBag(config);
    const dag = bag.get(dagId);
    await database.db.transaction((tx) => queries.dags.syncDagBag(tx, bag.dags.values(), bag.errors));
    const run = await triggerDagRun(database, dag, conf, { runId, priority, tags });
    out(`queued run ${run.runId} of ${dagId}\n`);
  } finally {
    await database.close();
  }
}

export async function dagsTest(dagId: string, confRaw: string | undefined, json: boolean, onlyTask?: string): Promise<number> {
  const conf = parseConfArg(confRaw);
  const { config, database } = await openEnv({ memory: true });
  // The run's own database is thrown away; connections and variables come from the real one.
  const metadata = config.databaseUrl ? await openEnv() : null;
  const secrets = metadata?.secrets.secrets ?? (await openSecrets(config, database)).secrets;
  try {
    const bag = await loadBag(config);
    const dag = bag.get(dagId);
    if (onlyTask && !dag.tasks.has(onlyTask)) throw new UnknownTaskError(dagId, onlyTask);
    await applyConfigPools(database, config);
    const result = await runDagLocally(database, bag, dag, conf, {
      onlyTask, secrets,
      onProgress: json ? undefined : (line) => process.stderr.write(`  ${line}\n`),
    });
    if (json) {
      const taskInstances = [];
      for (const { id, ...t } of result.taskInstances) {
        const value = await queries.xcom.readXCom(database.db, result.runPk, t.taskId, 'return_value', t.mapIndex);
        taskInstances.push({ ...t, ...returnValuePreview(value) });
      }
      const { dagId: d, runId, state, startDate, endDate } = result;
      printJson({ dagId: d, runId, state, startDate, endDate, taskInstances });
    } else {
      const shown = (onlyTask ? result.taskInstances.filter((t) => t.taskId === onlyTask) : result.taskInstances)
        .map((t) => ({ ...t, duration: formatSeconds(t.duration) }));
      out(`${table(shown, ['taskId', 'mapIndex', 'state', 'tryNumber', 'duration', 'error'])}\n`);
      if (onlyTask) {
        for (const t of shown) for (const l of await readTaskLogs(database.db, { ...t, dagId, runId: result.runId }, undefined, t.tryNumber)) out(`[${l.ts.toISOString()}] ${l.level.toUpperCase()} ${l.message}\n`);
      }
      const runSeconds = result.startDate && result.endDate ? (result.endDate.getTime() - result.startDate.getTime()) / 1000 : null;
      out(`run ${result.runId}: ${result.state}${runSeconds === null ? '' : ` in ${formatSeconds(runSeconds)}`}\n`);
    }
    return result.state === 'success' ? 0 : 1;
  } finally {
    await database.close();
    await metadata?.database.close();
  }
}

export async function tasksLogs(runId: string, taskId: string, tryNumber: number | undefined, json: boolean): Promise<void> {
  const { database } = await openEnv();
  try {
    const tis = await database.db.select().from(schema.taskInstances)
      .where(and(eq(schema.taskInstances.runId, runId), eq(schema.taskInstances.taskId, taskId)));
    if (!tis.length) throw new UpdraftError(`no task "${taskId}" in run "${runId}"; see \`updraft runs show ${runId}\``);
    const lines = [];
    for (const ti of tis) lines.push(...(await readTaskLogs(database.db, ti, tryNumber, ti.tryNumber)).map((l) => ({ ...l, mapIndex: ti.mapIndex })));
    if (json) printJson(lines);
    else if (!lines.length) out('(no log lines)\n');
    else for (const l of lines) out(`[try ${l.tryNumber}] ${l.ts.toISOString()} ${l.level.toUpperCase()} ${l.message}\n`);
  } finally {
    await database.close();
  }
}

export async function runsList(dagId: string | undefined, json: boolean): Promise<void> {
  const { database } = await openEnv();
  try {
    const runs = await queries.dagRuns.listRuns(database.db, dagId);
    if (json) printJson(runs);
    else out(`${table(runs, ['dagId', 'runId', 'state', 'runType', 'logicalDate', 'startDate', 'endDate'])}\n`);
  } finally {
    await database.close();
  }
}

export async function runsShow(runId: string, dagId: string | undefined, json: boolean): Promise<void> {
  const { database } = await openEnv();
  try {
    // Scheduled run ids repeat across DAGs (same interval), so show every match unless --dag-id narrows it.
    const runs = await queries.dagRuns.getRun(database.db, runId, dagId);
    if (!runs.length) throw new UpdraftError(`no run "${runId}"${dagId ? ` for DAG "${dagId}"` : ''}; see \`updraft runs list\``);
    const views = [];
    for (const run of runs) {
      const tis = await queries.dagRuns.runTaskInstances(database.db, run.id);
      const taskInstances = tis.map((t) => ({ taskId: t.taskId, mapIndex: t.mapIndex, state: t.state, tryNumber: t.tryNumber, startDate: t.startDate, endDate: t.endDate, duration: t.duration, error: t.error, progress: t.progress as { done: number; failed: number; total: number } | null }));
      views.push({ ...run, taskInstances });
    }
    if (json) printJson(dagId || views.length === 1 ? views[0] : views);
    else {
      for (const v of views) {
        out(`${v.dagId} ${v.runId}: ${v.state} (logical date ${v.logicalDate.toISOString()})\n`);
        // Iterate TIs show their items as "done/total (n failed)".
        const rows = v.taskInstances.map((t) => ({ ...t, progress: t.progress ? `${t.progress.done}/${t.progress.total}${t.progress.failed ? ` (${t.progress.failed} failed)` : ''}` : null }));
        out(`${table(rows, ['taskId', 'mapIndex', 'state', 'tryNumber', 'progress', 'duration', 'error'])}\n\n`);
      }
    }
  } finally {
    await database.close();
  }
}

/** Return values longer than this (as JSON) are cut in `dags test --json`, which says so. */
export const RETURN_VALUE_LIMIT = 2000;

export function returnValuePreview(value: unknown): { returnValue: unknown; returnValueTruncated?: { totalChars: number; shownChars: number } } {
  if (value === undefined) return { returnValue: null };
  const text = JSON.stringify(value) ?? 'null';
  if (text.length <= RETURN_VALUE_LIMIT) return { returnValue: value };
  return { returnValue: text.slice(0, RETURN_VALUE_LIMIT), returnValueTruncated: { totalChars: text.length, shownChars: RETURN_VALUE_LIMIT } };
}

export function formatSeconds(seconds: number | null): string | null {
  if (seconds === null) return null;
  return seconds < 10 ? `${seconds.toFixed(3)}s` : `${seconds.toFixed(1)}s`;
}
