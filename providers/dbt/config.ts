/**
 * Node configs as dbt resolves them: `dbt_project.yml`'s hierarchy (`models:` → project →
 * folders → model, `+` keys are configs), then the schema.yml entry, then `config()` in SQL,
 * each level overriding the one above. Tags and hooks add up instead of replacing.
 */

export interface PartitionBy {
  field: string;
  data_type?: 'date' | 'timestamp' | 'datetime' | 'int64';
  granularity?: 'hour' | 'day' | 'month' | 'year';
  range?: { start: number; end: number; interval: number };
}

export interface DbtConfig {
  materialized: string;
  enabled: boolean;
  schema?: string;
  alias?: string;
  database?: string;
  tags: string[];
  unique_key?: string | string[];
  incremental_strategy?: string;
  on_schema_change?: string;
  partition_by?: PartitionBy;
  cluster_by?: string | string[];
  labels?: Record<string, string>;
  pre_hook: string[];
  post_hook: string[];
  severity?: string;
  column_types?: Record<string, string>;
  persist_docs?: { relation?: boolean; columns?: boolean };
  [key: string]: unknown;
}

const ADDITIVE = new Set(['tags', 'pre_hook', 'post_hook']);

/** `pre-hook` → `pre_hook`: dbt accepts both spellings. */
const norm = (key: string) => key.replace(/^\+/, '').replace(/-/g, '_');

function asList(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]).map((v) => (typeof v === 'object' && v && 'sql' in v ? String((v as { sql: unknown }).sql) : String(v)));
}

export function applyConfig(target: Record<string, unknown>, values: Record<string, unknown>): void {
  for (const [rawKey, value] of Object.entries(values)) {
    const key = norm(rawKey);
    if (ADDITIVE.has(key)) target[key] = [...asList(target[key]), ...asList(value)];
    else if (key === 'meta' || key === 'labels') target[key] = { ...(target[key] as object | undefined), ...(value as object) };
    else target[key] = value;
  }
}

/**
 * The project-level configs along `fqn` (project name, folders, node name) from a `models:` or
 * `seeds:` tree. A key with `+`, or a plain key whose value is not an object, is a config; an
 * object under a plain key is the next level.
 */
export function hierarchyConfig(tree: Record<string, unknown> | undefined, fqn: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let level: Record<string, unknown> | undefined = tree;
  for (let depth = 0; level && depth <= fqn.length; depth++) {
    const here: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(level)) {
      const isObject = value !== null && typeof value === 'object' && !Array.isArray(value);
      if (key.startsWith('+') || !isObject || ['partition_by', 'labels', 'meta', 'column_types', 'persist_docs'].includes(norm(key))) here[key] = value;
    }
    applyConfig(out, here);
    const next = fqn[depth] !== undefined ? level[fqn[depth]] : undefined;
    level = next && typeof next === 'object' && !Array.isArray(next) ? next as Record<string, unknown> : undefined;
  }
  return out;
}

export function finishConfig(raw: Record<string, unknown>, defaultMaterialized: string): DbtConfig {
  return {
    ...raw,
    materialized: String(raw.materialized ?? defaultMaterialized),
    enabled: raw.enabled !== false,
    tags: asList(raw.tags),
    pre_hook: asList(raw.pre_hook),
    post_hook: asList(raw.post_hook),
  } as DbtConfig;
}
