/**
 * A task's templated fields rendered for one run: the template search path (the DAG file's
 * folder, then the DAG's templateSearchPath), Airflow's context names, the DAG's macros and
 * filters, and the process's variables and connections. Shared by the worker, before
 * `execute`, and by `updraft tasks render`.
 */
import path from 'node:path';
import type { Dag } from '../authoring/dag.ts';
import type { BaseOperator } from '../authoring/operator.ts';
import { renderFields, buildTemplateContext, type ContextInput } from '../templates/render.ts';
import { connectionView } from '../connections/connection.ts';
import { ConnectionNotFoundError } from '../connections/secrets.ts';
import type { Lookups } from './task-context.ts';

export async function renderTaskFields(op: BaseOperator, dag: Dag, input: ContextInput, lookups: Lookups,
  xcom?: (taskId: string, key: string, mapIndex: number) => Promise<unknown>): Promise<Record<string, unknown>> {
  const dir = path.dirname(dag.fileloc);
  const fields = Object.fromEntries(op.templateFields.map((f) => [f, (op as unknown as Record<string, unknown>)[f]]));
  return renderFields({
    fields, templateExt: op.templateExt,
    searchPath: [dir, ...dag.templateSearchPath.map((p) => path.resolve(dir, p))],
    context: buildTemplateContext(input),
    lookups: {
      variable: (key) => lookups.variable(key),
      // Missing is not an error here: the template's own error names it, with the field.
      connection: async (id) => {
        try {
          return connectionView(await lookups.connection(id));
        } catch (err) {
          if (err instanceof ConnectionNotFoundError) return undefined;
          throw err;
        }
      },
      xcom,
    },
    userDefinedMacros: dag.userDefinedMacros, userDefinedFilters: dag.userDefinedFilters,
    where: { dagId: dag.dagId, taskId: op.taskId },
  });
}
