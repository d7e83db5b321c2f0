/**
 * A seed's BigQuery schema: `column_types` where the project gives them, else inferred from the
 * CSV's values as dbt's agate does (integers, then floats, booleans, dates, timestamps, text).
 * An empty cell is NULL and says nothing about the type.
 */
import { parse } from 'csv-parse/sync';
import { DbtProjectError } from './errors.ts';

export interface SeedField {
  name: string;
  type: string;
  mode: 'NULLABLE';
}

const RULES: [string, RegExp][] = [
  ['INT64', /^-?\d{1,18}$/],
  ['FLOAT64', /^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/],
  ['BOOL', /^(true|false)$/i],
  ['DATE', /^\d{4}-\d{2}-\d{2}$/],
  ['TIMESTAMP', /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}| UTC)?$/],
];

export function seedSchema(file: string, csv: string, columnTypes: Record<string, string> = {}, delimiter = ','): SeedField[] {
  let rows: string[][];
  try {
    rows = parse(csv, { delimiter, skip_empty_lines: true, bom: true }) as string[][];
  } catch (err) {
    throw new DbtProjectError(file, (err as { lines?: number }).lines ?? null, `CSV: ${(err as Error).message}`);
  }
  const [header, ...data] = rows;
  if (!header?.length) throw new DbtProjectError(file, 1, 'the seed has no header row');
  return header.map((name, i) => {
    const given = columnTypes[name];
    if (given) return { name, type: given.toUpperCase(), mode: 'NULLABLE' as const };
    const values = data.map((r) => r[i] ?? '').filter((v) => v !== '');
    const type = RULES.find(([, re]) => values.length > 0 && values.every((v) => re.test(v)))?.[0] ?? 'STRING';
    return { name, type, mode: 'NULLABLE' as const };
  });
}
