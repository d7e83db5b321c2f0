/**
 * Airflow's NotPreviouslySkippedDep: a TI that is about to run although a branch or
 * short-circuit directly upstream of it (which already succeeded) did not follow it, say after
 * being cleared by hand, is skipped again. The decision is re-read from that task's XCom.
 */
import type { Executor } from '../db/client.ts';
import type { Dag } from '../authoring/dag.ts';
import type { BaseOperator } from '../authoring/operator.ts';
import { decideSkips, skipPolicyOf } from '../authoring/branching.ts';
import { MappedFunctionOperator } from '../authoring/mapping.ts';
import { readXCom } from '../db/queries/xcom.ts';
import { xcomStorage } from '../xcom/storage.ts';
import { TaskState } from '../model/states.ts';
import type { StateCounts } from './dependencies.ts';

export async function skippedByUpstreamChoice(ex: Executor, runPk: number, dag: Dag, op: BaseOperator, states: Map<string, StateCounts>): Promise<boolean> {
  for (const up of op.upstreamIds) {
    const chooser = dag.tasks.get(up);
    // A mapped chooser decides per map index, for TIs that do not exist before it finishes.
    if (!chooser || !skipPolicyOf(chooser) || chooser instanceof MappedFunctionOperator) continue;
    if (!states.get(up)?.[TaskState.SUCCESS]) continue;
    const result = await readXCom(ex, runPk, up, 'return_value', -1, xcomStorage().decode);
    try {
      if (decideSkips(chooser, dag, result).includes(op.taskId)) return true;
    } catch {
      // A choice that cannot be followed failed its task; it never reaches here as a success.
    }
  }
  return false;
}
