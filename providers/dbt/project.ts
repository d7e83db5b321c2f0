/**
 * A dbt project as a graph of nodes, read at import: models (their SQL scanned for `ref`,
 * `source` and `config`), seeds, schema.yml sources and tests, singular tests and macro files.
 * Nothing here renders SQL for BigQuery or touches the network; compile.ts does that in the
 * setup task. A model whose refs or config are computed is rendered once here to learn them.
 */
import path from 'node:path';
import { applyConfig, finishConfig, hierarchyConfig, type DbtConfig } from './config.ts';
import { DbtProjectError } from './errors.ts';
import { listFiles, readProjectYml, readYaml, type DbtProjectYml, type ProjectFile } from './project-files.ts';
import { scanTemplate } from './scan.ts';

export type NodeKind = 'model' | 'seed' | 'test';

export interface GenericTest {
  /** not_null, unique, accepted_values, relationships, or a `{% test %}` of the project. */
  name: string;
  column: string | null;
  kwargs: Record<string, unknown>;
}

export interface DbtNode {
  uniqueId: string;
  kind: NodeKind;
  name: string;
  /** Relative to the project, with `/`. */
  path: string;
  /** Folders under the model (or seed) path. */
  folders: string[];
  raw: string;
  config: DbtConfig;
  refs: { name: string; line: number }[];
  sources: { source: string; table: string; line: number }[];
  /** Resolved by graph.ts: unique ids of the models and seeds this node reads. */
  dependsOn: string[];
  description?: string;
  /** Tests: the node they test (null for a singular test that refs several). */
  attachedTo?: string | null;
  generic?: GenericTest;
}

export interface DbtSource {
  name: string;
  table: string;
  project?: string;
  schema: string;
  identifier: string;
}

export interface LoadedProject {
  dir: string;
  name: string;
  yml: DbtProjectYml;
  nodes: Map<string, DbtNode>;
  sources: Map<string, DbtSource>;
  macroFiles: ProjectFile[];
  vars: Record<string, unknown>;
}

const BUILTIN_TESTS = new Set(['not_null', 'unique', 'accepted_values', 'relationships']);

function folderOf(file: string, roots: readonly string[]): string[] {
  const root = roots.find((r) => file.startsWith(`${r.replace(/\/+$/, '')}/`)) ?? '';
  return path.posix.dirname(file.slice(root.length).replace(/^\//, '')).split('/').filter((p) => p && p !== '.');
}

/** Read the project. `renderDynamic` learns refs and config of models whose calls are computed. */
export function loadProject(dir: string, renderDynamic: (node: DbtNode, project: LoadedProject) => void): LoadedProject {
  const yml = readProjectYml(dir);
  const name = yml.name;
  const modelPaths = yml['model-paths'] ?? ['models'];
  const seedPaths = yml['seed-paths'] ?? ['seeds'];
  const testPaths = yml['test-paths'] ?? ['tests'];
  const project: LoadedProject = {
    dir, name, yml, nodes: new Map(), sources: new Map(),
    macroFiles: [...listFiles(dir, yml['macro-paths'] ?? ['macros'], ['.sql']), ...listFiles(dir, testPaths.map((p) => `${p}/generic`), ['.sql'])],
    vars: { ...(yml.vars ?? {}) },
  };
  for (const f of project.macroFiles) scanTemplate(f.source, f.path);

  const dynamic: DbtNode[] = [];
  const sqlConfigs = new Map<string, Record<string, unknown>[]>();
  const schemaConfigs = new Map<string, Record<string, unknown>>();
  for (const file of listFiles(dir, modelPaths, ['.sql'])) {
    const modelName = path.posix.basename(file.path, '.sql');
    const folders = folderOf(file.path, modelPaths);
    const scan = scanTemplate(file.source, file.path);
    const raw = hierarchyConfig(yml.models, [name, ...folders, modelName]);
    const node: DbtNode = {
      uniqueId: `model.${name}.${modelName}`, kind: 'model', name: modelName, path: file.path, folders, raw: file.source,
      config: finishConfig(raw, 'view'), refs: [], sources: [], dependsOn: [],
    };
    if (project.nodes.has(node.uniqueId)) throw new DbtProjectError(file.path, null, `a second model named "${modelName}" (the first is ${project.nodes.get(node.uniqueId)!.path}); model names must be unique`);
    for (const call of scan.calls) {
      if (call.name === 'ref') {
        const args = call.args.map(String);
        if (args.length === 2 && args[0] !== name) throw new DbtProjectError(file.path, call.line, `ref('${args[0]}', '${args[1]}') names package "${args[0]}", which is not installed`);
        node.refs.push({ name: args.at(-1)!, line: call.line });
      } else if (call.name === 'source') {
        node.sources.push({ source: String(call.args[0]), table: String(call.args[1]), line: call.line });
      } else {
        sqlConfigs.set(node.uniqueId, [...(sqlConfigs.get(node.uniqueId) ?? []), call.kwargs]);
      }
    }
    project.nodes.set(node.uniqueId, node);
    if (scan.dynamic) dynamic.push(node);
  }
  for (const file of listFiles(dir, seedPaths, ['.csv'])) {
    const seedName = path.posix.basename(file.path, '.csv');
    const folders = folderOf(file.path, seedPaths);
    project.nodes.set(`seed.${name}.${seedName}`, {
      uniqueId: `seed.${name}.${seedName}`, kind: 'seed', name: seedName, path: file.path, folders, raw: '',
      config: finishConfig(hierarchyConfig(yml.seeds, [name, ...folders, seedName]), 'seed'), refs: [], sources: [], dependsOn: [],
    });
  }
  for (const file of listFiles(dir, modelPaths.concat(seedPaths), ['.yml', '.yaml'])) readSchemaYml(project, file, schemaConfigs);
  // Project file, then schema.yml, then config() in SQL.
  for (const node of project.nodes.values()) {
    const schema = schemaConfigs.get(node.uniqueId);
    const sql = sqlConfigs.get(node.uniqueId);
    if (!schema && !sql) continue;
    const merged: Record<string, unknown> = { ...node.config };
    if (schema) applyConfig(merged, schema);
    for (const c of sql ?? []) applyConfig(merged, c);
    node.config = finishConfig(merged, node.config.materialized);
  }
  for (const file of listFiles(dir, testPaths, ['.sql']).filter((f) => !f.path.includes('/generic/'))) {
    const testName = path.posix.basename(file.path, '.sql');
    const scan = scanTemplate(file.source, file.path);
    const node: DbtNode = {
      uniqueId: `test.${name}.${testName}`, kind: 'test', name: testName, path: file.path, folders: [], raw: file.source,
      config: finishConfig(hierarchyConfig(yml.data_tests ?? yml.tests, [name, testName]), 'test'), refs: [], sources: [], dependsOn: [],
    };
    for (const call of scan.calls) {
      if (call.name === 'ref') node.refs.push({ name: String(call.args.at(-1)), line: call.line });
      else if (call.name === 'source') node.sources.push({ source: String(call.args[0]), table: String(call.args[1]), line: call.line });
      else applyConfig(node.config, call.kwargs);
    }
    project.nodes.set(node.uniqueId, node);
    if (scan.dynamic) dynamic.push(node);
  }
  for (const node of dynamic) renderDynamic(node, project);
  return project;
}

type SchemaColumn = { name: string; description?: string; tests?: unknown[]; data_tests?: unknown[] };
type SchemaEntry = { name: string; description?: string; config?: Record<string, unknown>; columns?: SchemaColumn[]; tests?: unknown[]; data_tests?: unknown[] };
type SchemaYml = {
  models?: SchemaEntry[];
  seeds?: SchemaEntry[];
  sources?: { name: string; database?: string; project?: string; schema?: string; tables?: { name: string; identifier?: string }[] }[];
};

function readSchemaYml(project: LoadedProject, file: ProjectFile, schemaConfigs: Map<string, Record<string, unknown>>): void {
  const doc = readYaml(file.path, file.source) as SchemaYml;
  for (const src of doc.sources ?? []) {
    for (const t of src.tables ?? []) {
      project.sources.set(`${src.name}.${t.name}`, {
        name: src.name, table: t.name, project: src.project ?? src.database, schema: src.schema ?? src.name, identifier: t.identifier ?? t.name,
      });
    }
  }
  for (const [kind, entries] of [['model', doc.models], ['seed', doc.seeds]] as const) {
    for (const entry of entries ?? []) {
      const node = project.nodes.get(`${kind}.${project.name}.${entry.name}`);
      if (!node) throw new DbtProjectError(file.path, lineOf(file.source, `name: ${entry.name}`), `${kind} "${entry.name}" has properties here but no ${kind} file`);
      node.description = entry.description;
      if (entry.config) schemaConfigs.set(node.uniqueId, entry.config);
      for (const t of entry.data_tests ?? entry.tests ?? []) addGenericTest(project, file, node, null, t);
      for (const col of entry.columns ?? []) for (const t of col.data_tests ?? col.tests ?? []) addGenericTest(project, file, node, col.name, t);
    }
  }
}

function addGenericTest(project: LoadedProject, file: ProjectFile, parent: DbtNode, column: string | null, spec: unknown): void {
  const [testName, rawArgs] = typeof spec === 'string' ? [spec, {}] : Object.entries(spec as Record<string, unknown>)[0] ?? ['', {}];
  const args = { ...(rawArgs as Record<string, unknown>) };
  const config: Record<string, unknown> = { ...(args.config as object | undefined) };
  if (args.severity !== undefined) config.severity = args.severity;
  delete args.config;
  delete args.severity;
  const plain = testName.replace(/^dbt\./, '');
  if (!BUILTIN_TESTS.has(plain) && !project.macroFiles.some((m) => m.source.includes(`test ${plain}(`))) {
    throw new DbtProjectError(file.path, lineOf(file.source, plain), `unknown test "${testName}" on ${parent.name}${column ? `.${column}` : ''}; Updraft knows not_null, unique, accepted_values, relationships and the project's {% test %} blocks`);
  }
  const suffix = Object.values(args).flat().map((v) => String(v).replace(/ref\(['"]?|['"]?\)/g, '')).join('__');
  const name = [plain, parent.name, column, suffix].filter(Boolean).join('_').replace(/[^A-Za-z0-9_]+/g, '_').slice(0, 120);
  const refs: DbtNode['refs'] = [];
  if (plain === 'relationships') {
    const to = /ref\(\s*['"]([^'"]+)['"]\s*\)/.exec(String(args.to ?? ''));
    if (!to) throw new DbtProjectError(file.path, lineOf(file.source, 'relationships'), `relationships test on ${parent.name}.${column} needs to: ref('model')`);
    refs.push({ name: to[1], line: lineOf(file.source, to[0]) ?? 0 });
  }
  const config2 = finishConfig({ ...hierarchyConfig(project.yml.data_tests ?? project.yml.tests, [project.name, ...parent.folders]), ...config }, 'test');
  const node: DbtNode = {
    uniqueId: `test.${project.name}.${name}`, kind: 'test', name, path: file.path, folders: parent.folders, raw: '',
    config: config2, refs, sources: [], dependsOn: [], attachedTo: parent.uniqueId,
    generic: { name: plain, column, kwargs: args },
  };
  project.nodes.set(node.uniqueId, node);
}

export function lineOf(text: string, needle: string): number | null {
  const at = text.indexOf(needle);
  return at < 0 ? null : text.slice(0, at).split('\n').length;
}
