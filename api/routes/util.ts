/** Small lookups the routes share: a run by its ids, a TI's row, JSON-schema of params. */
import { z } from 'zod';
import { queries, type Dag } from '../../core/index.ts';
import { notFound } from '../errors.ts';
import type { ApiContext } from '../context.ts';

export async function findRun(ctx: ApiContext, dagId: string, runId: string) {
  const [run] = await queries.dagRuns.getRun(ctx.database.db, runId, dagId);
  if (!run) throw notFound(`run "${runId}" of DAG "${dagId}"`, `list runs with GET /api/v1/dags/${encodeURIComponent(dagId)}/runs`);
  return run;
}

export async function findTi(ctx: ApiContext, dagId: string, runId: string, taskId: string, mapIndex: number) {
  const run = await findRun(ctx, dagId, runId);
  const ti = await queries.browse.getTi(ctx.database.db, run.id, taskId, mapIndex);
  if (!ti) throw notFound(`task "${taskId}"${mapIndex >= 0 ? ` [${mapIndex}]` : ''} in run "${runId}" of DAG "${dagId}"`);
  return { run, ti };
}

/** The JSON Schema of a DAG's params (what the trigger form is built from), or null. */
export function paramsJsonSchema(dag: Dag | undefined): unknown {
  if (!dag?.params) return null;
  try {
    return z.toJSONSchema(dag.params, { io: 'input', unrepresentable: 'any' });
  } catch {
    return null;
  }
}
