/**
 * Turning a task's declared inputs into values: XComArgs become upstream results (lists, for
 * mapped upstreams), and a mapped TI gets the item for its map index.
 */
import type { BaseOperator, XComArg } from '../authoring/operator.ts';
import { findXComArgs, resolveXComArgs } from '../authoring/function-task.ts';
import { MappedFunctionOperator, IterateOperator, itemInput } from '../authoring/mapping.ts';
import { readXComs, xcomKey } from '../db/queries/xcom.ts';
import { xcomStorage } from '../xcom/storage.ts';
import type { Executor } from '../db/client.ts';
import { TaskFailedNoRetry } from '../errors.ts';

export async function resolveValue(ex: Executor, runPk: number, value: unknown): Promise<unknown> {
  const refs = findXComArgs(value);
  if (!refs.length) return value;
  const values = await readXComs(ex, runPk, refs.map((r) => ({ taskId: r.operator.taskId, key: r.key, mapped: r.operator instanceof MappedFunctionOperator })), xcomStorage().decode);
  return resolveXComArgs(value, (r: XComArg<unknown>) => values.get(xcomKey(r.operator.taskId, r.key)) ?? null);
}

/** The lists a mapped or iterate task fans out over, checked to be arrays. */
export async function resolveMapLists(ex: Executor, runPk: number, op: MappedFunctionOperator | IterateOperator): Promise<{ partial: Record<string, unknown>; lists: [string, unknown[]][]; kwargsList: Record<string, unknown>[] | null }> {
  const partial = (await resolveValue(ex, runPk, op.partialInput)) as Record<string, unknown>;
  if (op instanceof MappedFunctionOperator && op.map.kind === 'expandKwargs') {
    const list = await resolveValue(ex, runPk, op.map.source);
    if (!Array.isArray(list) || list.some((x) => !x || typeof x !== 'object' || Array.isArray(x))) {
      throw new TaskFailedNoRetry(`task "${op.taskId}" of DAG "${op.dagId}": expandKwargs() needs a list of input objects, got ${describe(list)}`);
    }
    return { partial, lists: [], kwargsList: list as Record<string, unknown>[] };
  }
  const spec = op instanceof MappedFunctionOperator ? (op.map as { spec: Record<string, unknown> }).spec : op.spec;
  const lists: [string, unknown[]][] = [];
  for (const [key, source] of Object.entries(spec)) {
    const list = await resolveValue(ex, runPk, source);
    if (!Array.isArray(list)) throw new TaskFailedNoRetry(`task "${op.taskId}" of DAG "${op.dagId}": input "${key}" to map over is ${describe(list)}, not a list`);
    lists.push([key, list]);
  }
  return { partial, lists, kwargsList: null };
}

/** What `run` receives for this TI. */
export async function resolveOperatorInputs(ex: Executor, runPk: number, op: BaseOperator, mapIndex: number, mapInput: unknown = null): Promise<unknown> {
  if (op instanceof MappedFunctionOperator) {
    if (mapInput !== null && mapInput !== undefined) return mapInput;
    const { partial, lists, kwargsList } = await resolveMapLists(ex, runPk, op);
    if (kwargsList) return { ...partial, ...kwargsList[mapIndex] };
    return itemInput(partial, lists, mapIndex);
  }
  if (op instanceof IterateOperator) return undefined; // the iterate runner resolves per item
  return resolveValue(ex, runPk, op.inputs());
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'empty (null)';
  return Array.isArray(v) ? `a list` : `a ${typeof v}`;
}
