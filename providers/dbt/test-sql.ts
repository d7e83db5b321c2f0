/**
 * The SQL of dbt's built-in generic tests on BigQuery. A test passes when its query returns no
 * rows; each query returns the offending rows so a failure can show them.
 */
import type { Relation } from './context.ts';
import { DbtCompilerError } from './errors.ts';
import type { GenericTest } from './project.ts';

const literal = (v: unknown, quote: boolean) => (quote ? `'${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'` : String(v));

export function builtinTestSql(test: GenericTest, model: Relation, refs: (name: string) => Relation): string {
  const col = test.column;
  const where = test.kwargs.where ? ` where ${String(test.kwargs.where)}` : '';
  const source = where ? `(select * from ${model}${where})` : String(model);
  switch (test.name) {
    case 'not_null':
      return `select ${col}\nfrom ${source} dbt_subquery\nwhere ${col} is null`;
    case 'unique':
      return `select ${col} as unique_field, count(*) as n_records\nfrom ${source} dbt_subquery\nwhere ${col} is not null\ngroup by ${col}\nhaving count(*) > 1`;
    case 'accepted_values': {
      const values = test.kwargs.values;
      if (!Array.isArray(values) || !values.length) throw new DbtCompilerError(`accepted_values on ${model.identifier}.${col} needs values: [...]`);
      const quote = test.kwargs.quote !== false;
      return `with all_values as (\n  select ${col} as value_field, count(*) as n_records\n  from ${source} dbt_subquery\n  group by ${col}\n)\nselect *\nfrom all_values\nwhere value_field not in (${values.map((v) => literal(v, quote)).join(', ')})`;
    }
    case 'relationships': {
      const to = /ref\(\s*['"]([^'"]+)['"]\s*\)/.exec(String(test.kwargs.to))![1];
      const field = String(test.kwargs.field);
      return `with child as (\n  select ${col} as from_field\n  from ${source} dbt_subquery\n  where ${col} is not null\n),\nparent as (\n  select ${field} as to_field\n  from ${refs(to)}\n)\nselect from_field\nfrom child\nleft join parent on child.from_field = parent.to_field\nwhere parent.to_field is null`;
    }
    default:
      throw new DbtCompilerError(`no built-in SQL for test "${test.name}"`);
  }
}
