/**
 * Reading a dbt project's files: `dbt_project.yml`, `profiles.yml` (rendered with `env_var`, as
 * dbt does), and the model, seed, macro and test folders. Keys Updraft has no use for
 * (`require-dbt-version`, `clean-targets`, docs, exposures…) are ignored; what would change
 * results and can't be honoured (an installed package missing) fails with the file.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { DbtProjectError } from './errors.ts';

export interface ProjectFile {
  /** Relative to the project folder, with `/`. */
  path: string;
  source: string;
}

export interface DbtProjectYml {
  name: string;
  profile?: string;
  'model-paths'?: string[];
  'seed-paths'?: string[];
  'macro-paths'?: string[];
  'test-paths'?: string[];
  vars?: Record<string, unknown>;
  models?: Record<string, unknown>;
  seeds?: Record<string, unknown>;
  tests?: Record<string, unknown>;
  'data_tests'?: Record<string, unknown>;
  'on-run-start'?: unknown;
  'on-run-end'?: unknown;
}

/** A BigQuery output of profiles.yml, reduced to what names relations. */
export interface DbtTarget {
  name: string;
  type: 'bigquery';
  project: string;
  /** dbt's `schema` (BigQuery's dataset). */
  schema: string;
  location?: string;
  threads: number;
}

/** Parse YAML; an error names the file and line. */
export function readYaml(file: string, text: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true });
  const err = doc.errors[0];
  if (err) throw new DbtProjectError(file, err.linePos?.[0].line ?? null, `YAML: ${err.message.split('\n')[0]}`);
  return doc.toJS() ?? {};
}

export function readProjectYml(dir: string): DbtProjectYml {
  const file = path.join(dir, 'dbt_project.yml');
  if (!existsSync(file)) throw new DbtProjectError('dbt_project.yml', null, `no dbt_project.yml in ${dir}; projectDir must be the folder that holds it`);
  const yml = readYaml('dbt_project.yml', readFileSync(file, 'utf8')) as DbtProjectYml;
  if (!yml || typeof yml.name !== 'string') throw new DbtProjectError('dbt_project.yml', null, 'the project needs a "name"');
  const packages = ['packages.yml', 'dependencies.yml'].find((f) => existsSync(path.join(dir, f)));
  if (packages) {
    const deps = readYaml(packages, readFileSync(path.join(dir, packages), 'utf8')) as { packages?: unknown[] };
    if (deps?.packages?.length && !existsSync(path.join(dir, 'dbt_packages'))) {
      throw new DbtProjectError(packages, null, `the project depends on ${deps.packages.length} package(s), but dbt_packages/ is missing; install them (dbt deps) or remove them`);
    }
  }
  return yml;
}

/**
 * The target from profiles.yml: `profilesDir`, then DBT_PROFILES_DIR, then the project folder.
 * `env_var()` is rendered first. Only a BigQuery output can be used.
 */
export function readTarget(dir: string, profileName: string, targetName: string | undefined, profilesDir: string | undefined,
  renderProfile: (text: string) => string): DbtTarget {
  const candidates = [profilesDir, process.env.DBT_PROFILES_DIR, dir].filter((d): d is string => !!d);
  const folder = candidates.find((d) => existsSync(path.join(d, 'profiles.yml')));
  if (!folder) throw new DbtProjectError('profiles.yml', null, `no profiles.yml in ${candidates.join(' or ')}; put one beside dbt_project.yml or pass profilesDir`);
  const all = readYaml('profiles.yml', renderProfile(readFileSync(path.join(folder, 'profiles.yml'), 'utf8'))) as Record<string, { target?: string; outputs?: Record<string, Record<string, unknown>> }>;
  const profile = all[profileName];
  if (!profile?.outputs) throw new DbtProjectError('profiles.yml', null, `no profile "${profileName}" with outputs (the project's "profile")`);
  const name = targetName ?? profile.target ?? 'dev';
  const out = profile.outputs[name];
  if (!out) throw new DbtProjectError('profiles.yml', null, `profile "${profileName}" has no target "${name}"; it has ${Object.keys(profile.outputs).join(', ')}`);
  if (out.type !== 'bigquery') throw new DbtProjectError('profiles.yml', null, `target "${name}" is of type "${String(out.type)}"; Updraft runs dbt projects on BigQuery only`);
  const project = out.project ?? out.database;
  const schema = out.dataset ?? out.schema;
  if (typeof schema !== 'string') throw new DbtProjectError('profiles.yml', null, `target "${name}" needs a dataset (or schema)`);
  return { name, type: 'bigquery', project: typeof project === 'string' ? project : '', schema, location: typeof out.location === 'string' ? out.location : undefined, threads: Number(out.threads ?? 4) };
}

/** Every file under the folders (relative to `dir`) whose name ends with one of `exts`, sorted. */
export function listFiles(dir: string, folders: readonly string[], exts: readonly string[]): ProjectFile[] {
  const out: ProjectFile[] = [];
  const walk = (rel: string) => {
    const abs = path.join(dir, rel);
    if (!existsSync(abs)) return;
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(child);
      else if (exts.some((e) => entry.name.endsWith(e))) out.push({ path: child, source: readFileSync(path.join(dir, child), 'utf8') });
    }
  };
  for (const f of folders) walk(f.replace(/\/+$/, ''));
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}
