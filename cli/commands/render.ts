/**
 * `updraft tasks render`: a task's templated fields as a run would render them, without running it.
 * With `--run-id` it renders for that existing run: its dates and conf, and its XComs for `ti.xcom_pull`.
 */
import { UnknownTaskError, UpdraftError, renderTaskFields, masker, queries, xcomStorage } from '../../core/index.ts';
import { openEnv, loadBag, out, printJson } from '../env.ts';
import { UsageError } from '../errors.ts';

export async function tasksRender(dagId: string, taskId: string, logicalDateArg: string | undefined, confRaw: string | undefined, json: boolean, runId?: string): Promise<void> {
  let logicalDate = logicalDateArg ? new Date(logicalDateArg) : new Date();
  if (Number.isNaN(logicalDate.getTime())) throw new UsageError(`--logical-date must be an ISO 8601 date such as 2024-01-01T00:00:00Z, got "${logicalDateArg}"`);
  let conf: Record<string, unknown> = {};
  try {
    if (confRaw) conf = JSON.parse(confRaw) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`--conf is not valid JSON: ${(err as Error).message}`);
  }
  const { config, database, secrets } = await openEnv();
  try {
    const bag = await loadBag(config);
    const dag = bag.get(dagId);
    const op = dag.task(taskId);
    if (!op) throw new UnknownTaskError(dagId, taskId);
    if (!op.templateFields.length) throw new UpdraftError(`task "${taskId}" (${op.operatorName}) of DAG "${dagId}" has no templated fields`);
    let run: { id: number; runId: string; logicalDate: Date; dataIntervalStart: Date | null; dataIntervalEnd: Date | null; conf: unknown } | undefined;
    if (runId) {
      [run] = await queries.dagRuns.getRun(database.db, runId, dagId);
      if (!run) throw new UpdraftError(`DAG "${dagId}" has no run "${runId}"; list its runs with: updraft runs list --dag-id ${dagId}`);
      logicalDate = run.logicalDate;
      if (!confRaw) conf = (run.conf ?? {}) as Record<string, unknown>;
    }
    const rendered = await renderTaskFields(op, dag, {
      dagId, taskId, runId: run?.runId ?? `manual__${logicalDate.toISOString()}`, mapIndex: -1, tryNumber: 1,
      logicalDate, dataIntervalStart: run?.dataIntervalStart ?? null, dataIntervalEnd: run?.dataIntervalEnd ?? null, params: dag.parseConf(conf), conf,
    }, { connection: (id) => secrets.secrets.connection(id), variable: (key) => secrets.secrets.variable(key) },
    run ? (t, key, mapIndex) => queries.xcom.readXCom(database.db, run.id, t, key, mapIndex, xcomStorage().decode) : undefined);
    const masked = masker.maskValue(rendered);
    if (json) printJson({ dagId, taskId, logicalDate: logicalDate.toISOString(), fields: masked });
    else for (const [k, v] of Object.entries(masked)) out(`# ${k}\n${typeof v === 'string' ? v : JSON.stringify(v, null, 2)}\n`);
  } finally {
    await database.close();
  }
}
