/**
 * Loading a dbt project at import: files read, graph resolved, selection applied. No network
 * and no writes. The nunjucks environment with the project's macros is built lazily: only a
 * model whose refs or config are computed needs it at import; the setup task always does.
 */
import path from 'node:path';
import { DbtJinja, type TemplateSource } from './jinja.ts';
import { renderNames, relationOf, type RenderCapture, type RenderEnv } from './context.ts';
import { applyConfig, finishConfig } from './config.ts';
import { resolveGraph } from './graph.ts';
import { loadProject, type DbtNode, type LoadedProject } from './project.ts';
import { readProjectYml, readTarget, type DbtTarget } from './project-files.ts';
import { selectNodes } from './select.ts';
import { MATERIALIZATIONS } from './materialize.ts';
import { DbtProjectError } from './errors.ts';

export interface DbtProjectOptions {
  /** The folder holding dbt_project.yml; relative paths resolve from the working directory. */
  projectDir: string;
  /** Where profiles.yml is (default: DBT_PROFILES_DIR, then projectDir). */
  profilesDir?: string;
  /** The profiles.yml target (default: the profile's `target`). */
  target?: string;
  /** Variables, over dbt_project.yml's `vars:`. A run's conf `dbt_vars` goes over these. */
  vars?: Record<string, unknown>;
  select?: string | readonly string[];
  exclude?: string | readonly string[];
}

export interface DbtGraph {
  project: LoadedProject;
  target: DbtTarget;
  /** Selected models, seeds and tests, in file order. */
  selected: DbtNode[];
  vars: Record<string, unknown>;
  /** The project's macros on nunjucks (built on first use). */
  jinja(): DbtJinja;
  /** Milliseconds spent loading at import. */
  parseMs: number;
}

/** `{% test name(...) %}` blocks are macros named `test_<name>`; custom materializations are not run. */
function macroSource(file: { path: string; source: string }): TemplateSource {
  const source = file.source
    .replace(/\{%(-?)\s*test\s+(\w+)\s*\(/g, '{%$1 macro test_$2(')
    .replace(/\{%(-?)\s*endtest\s*(-?)%\}/g, '{%$1 endmacro $2%}')
    .replace(/\{%-?\s*materialization\b[\s\S]*?\{%-?\s*endmaterialization\s*-?%\}/g, (block) => '\n'.repeat(block.split('\n').length - 1));
  return { path: file.path, source };
}

export function loadDbtGraph(options: DbtProjectOptions): DbtGraph {
  const started = performance.now();
  const dir = path.resolve(options.projectDir);
  let jinja: DbtJinja | null = null;
  let target: DbtTarget | null = null;
  let project: LoadedProject | null = null;
  const getJinja = () => (jinja ??= new DbtJinja(project!.macroFiles.map(macroSource)));
  const env = (): RenderEnv => ({
    project: project!, jinja: getJinja(), target: target!, vars: { ...project!.vars, ...options.vars }, execute: false, fullRefresh: false,
    runStartedAt: new Date(), invocationId: '',
  });
  const yml = readProjectYml(dir);
  const profileName = yml.profile ?? yml.name;
  target = readTarget(dir, profileName, options.target, options.profilesDir, (text) => {
    if (!text.includes('{{')) return text;
    const names = { env_var: (k: string, d?: string) => process.env[k] ?? d ?? (() => { throw new DbtProjectError('profiles.yml', null, `env var required but not provided: '${k}'`); })() };
    return new DbtJinja([]).renderString(text, 'profiles.yml', names);
  });
  project = loadProject(dir, (node, loaded) => {
    project = loaded;
    // Computed refs or config: render the model once, as dbt's parser does, to learn them.
    const capture: RenderCapture = { refs: [], sources: [], config: [], ephemerals: new Set() };
    const e = env();
    const tpl = e.jinja.compile({ path: node.path, source: node.raw });
    e.jinja.render(tpl, node.path, renderNames(e, node, capture, (n) => relationOf(e, n)));
    node.refs.push(...capture.refs.filter((r) => !node.refs.some((x) => x.name === r.name)));
    node.sources.push(...capture.sources);
    if (capture.config.length) {
      const merged: Record<string, unknown> = { ...node.config };
      for (const c of capture.config) applyConfig(merged, c);
      node.config = finishConfig(merged, node.config.materialized);
    }
  });
  resolveGraph(project);
  for (const n of project.nodes.values()) {
    if (n.kind === 'model' && n.config.enabled && !(MATERIALIZATIONS as readonly string[]).includes(n.config.materialized)) {
      throw new DbtProjectError(n.path, null, `unknown materialization "${n.config.materialized}"; Updraft runs ${MATERIALIZATIONS.join(', ')}`);
    }
  }
  const selected = selectNodes(project, options.select, options.exclude);
  return {
    project, target, selected, vars: { ...project.vars, ...options.vars }, jinja: getJinja,
    parseMs: performance.now() - started,
  };
}
