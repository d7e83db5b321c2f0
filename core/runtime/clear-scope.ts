/**
 * What else clearing a task clears, as Airflow's: a work task brings its relevant setups (each
 * upstream setup whose teardown is downstream of the task, or that has no teardown) and those
 * setups' teardowns, so the resource exists again while it reruns and is torn down after; a
 * setup brings its teardowns. Read from the serialized DAG the `dags` row holds.
 */
import { z } from 'zod';

const scopeSchema = z.object({
  tasks: z.array(z.object({
    taskId: z.string(),
    upstream: z.array(z.string()),
    downstream: z.array(z.string()),
    // DAGs serialized before setups existed have neither.
    setup: z.boolean().default(false),
    teardown: z.boolean().default(false),
  })),
});

type ScopeTask = z.output<typeof scopeSchema>['tasks'][number];

/** Every task downstream of `taskId`, transitively; [] when the DAG cannot be read. */
export function downstreamTasks(serialized: unknown, taskId: string): string[] {
  const parsed = scopeSchema.safeParse(serialized);
  if (!parsed.success) return [];
  const byId = new Map(parsed.data.tasks.map((t) => [t.taskId, t]));
  if (!byId.has(taskId)) return [];
  return [...reach(byId, taskId, 'downstream')];
}

/** The setup and teardown task ids to clear with `taskId`; [] when the DAG cannot be read. */
export function setupsAndTeardownsToClear(serialized: unknown, taskId: string): string[] {
  const parsed = scopeSchema.safeParse(serialized);
  if (!parsed.success) return [];
  const byId = new Map(parsed.data.tasks.map((t) => [t.taskId, t]));
  const task = byId.get(taskId);
  if (!task) return [];
  const teardownsOf = (t: ScopeTask) => t.downstream.filter((d) => byId.get(d)?.teardown);
  const out = new Set<string>();
  if (task.setup) {
    for (const d of teardownsOf(task)) out.add(d);
    return [...out];
  }
  const below = reach(byId, taskId, 'downstream');
  for (const id of reach(byId, taskId, 'upstream')) {
    const s = byId.get(id)!;
    if (!s.setup) continue;
    const teardowns = teardownsOf(s);
    if (teardowns.length && !teardowns.some((d) => below.has(d))) continue;
    out.add(id);
    for (const d of teardowns) if (d !== taskId) out.add(d);
  }
  return [...out];
}

function reach(byId: Map<string, ScopeTask>, from: string, side: 'upstream' | 'downstream'): Set<string> {
  const seen = new Set<string>();
  const stack = [...(byId.get(from)?.[side] ?? [])];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id) || !byId.has(id)) continue;
    seen.add(id);
    stack.push(...byId.get(id)![side]);
  }
  return seen;
}
