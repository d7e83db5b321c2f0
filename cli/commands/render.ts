/** `updraft tasks render`: a task's templated fields as a run would render them, without running it. */
import { UnknownTaskError, UpdraftError, renderTaskFields, masker } from '../../core/index.ts';
import { openEnv, loadBag, out, printJson } from '../env.ts';
import { UsageError } from '../errors.ts';

export async function tasksRender(dagId: string, taskId: string, logicalDateArg: string | undefined, confRaw: string | undefined, json: boolean): Promise<void> {
  const logicalDate = logicalDateArg ? new Date(logicalDateArg) : new Date();
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
    const rendered = await renderTaskFields(op, dag, {
      dagId, taskId, runId: `manual__${logicalDate.toISOString()}`, mapIndex: -1, tryNumber: 1,
      logicalDate, dataIntervalStart: null, dataIntervalEnd: null, params: dag.parseConf(conf), conf,
    }, { connection: (id) => secrets.secrets.connection(id), variable: (key) => secrets.secrets.variable(key) });
    const masked = masker.maskValue(rendered);
    if (json) printJson({ dagId, taskId, logicalDate: logicalDate.toISOString(), fields: masked });
    else for (const [k, v] of Object.entries(masked)) out(`# ${k}\n${typeof v === 'string' ? v : JSON.stringify(v, null, 2)}\n`);
  } finally {
    await database.close();
  }
}
