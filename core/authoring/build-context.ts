/**
 * The DAG (and task group) being built right now. `dag(options, build)` pushes itself here
 * while `build` runs, so operators and function tasks created inside it join that DAG,
 * the way Airflow's `with DAG(...)` block works. Building is synchronous by design.
 */
import { DagDefinitionError } from '../errors.ts';
import type { BaseOperator } from './operator.ts';

export interface BuildTarget {
  readonly dagId: string;
  addTask(op: BaseOperator): void;
  hasTask(taskId: string): boolean;
  readonly tasks: ReadonlyMap<string, BaseOperator>;
}

const dagStack: BuildTarget[] = [];
const groupStack: string[] = [];

export function currentDag(what: string): BuildTarget {
  const top = dagStack[dagStack.length - 1];
  if (!top) {
    throw new DagDefinitionError(null, `${what} was created outside a dag() builder; create tasks inside dag({ ... }, () => { ... })`);
  }
  return top;
}

export function withDag<T>(target: BuildTarget, build: () => T): T {
  dagStack.push(target);
  try {
    return build();
  } finally {
    dagStack.pop();
  }
}

export function withGroup<T>(groupId: string, build: () => T): T {
  groupStack.push(groupId);
  try {
    return build();
  } finally {
    groupStack.pop();
  }
}

/** Task ids inside groups are prefixed with the group path, as in Airflow ("group.task"). */
export function qualifyTaskId(taskId: string): string {
  return groupStack.length ? `${groupStack.join('.')}.${taskId}` : taskId;
}

export function currentGroupPath(): string | null {
  return groupStack.length ? groupStack.join('.') : null;
}
