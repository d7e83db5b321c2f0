/**
 * dbt's node selection: `name`, `tag:x`, `path:models/staging`, `config.materialized:view`
 * (any `config.<key>:value`), and the graph operators `+sel` (with ancestors), `sel+` (with
 * descendants), `2+sel` / `sel+1` (that many levels) and `@sel`. Space-separated items (or array
 * items) are a union; comma-joined ones an intersection. Tests follow the nodes they test.
 */
import picomatch from 'picomatch';
import { DbtProjectError } from './errors.ts';
import type { DbtNode, LoadedProject } from './project.ts';

function matchAtom(project: LoadedProject, atom: string): Set<string> {
  const out = new Set<string>();
  const colon = atom.indexOf(':');
  const [method, value] = colon > 0 ? [atom.slice(0, colon), atom.slice(colon + 1)] : ['fqn', atom];
  const isMatch = picomatch(value);
  const nodes = [...project.nodes.values()].filter((n) => n.config.enabled && n.kind !== 'test');
  for (const n of nodes) {
    let hit = false;
    if (method === 'fqn') hit = isMatch(n.name) || isMatch([project.name, ...n.folders, n.name].join('.')) || n.folders.includes(value) || value === project.name;
    else if (method === 'tag') hit = n.config.tags.some((t) => isMatch(t));
    else if (method === 'path') hit = n.path === value || n.path.startsWith(`${value.replace(/\/+$/, '')}/`) || isMatch(n.path);
    else if (method === 'resource_type') hit = n.kind === value;
    else if (method.startsWith('config.')) hit = String(n.config[method.slice(7)] ?? '') === value;
    else throw new DbtProjectError('select', null, `unknown selector method "${method}" in "${atom}"; use a name, tag:, path:, resource_type: or config.<key>:`);
    if (hit) out.add(n.uniqueId);
  }
  return out;
}

function neighbours(project: LoadedProject, seeds: Set<string>, up: boolean, depth: number): Set<string> {
  const children = new Map<string, string[]>();
  if (!up) for (const n of project.nodes.values()) for (const d of n.dependsOn) if (n.kind !== 'test') children.set(d, [...(children.get(d) ?? []), n.uniqueId]);
  const out = new Set(seeds);
  let frontier = [...seeds];
  for (let level = 0; frontier.length && level < depth; level++) {
    const next: string[] = [];
    for (const id of frontier) {
      const around = up ? (project.nodes.get(id)?.dependsOn ?? []) : (children.get(id) ?? []);
      for (const a of around) if (!out.has(a)) { out.add(a); next.push(a); }
    }
    frontier = next;
  }
  return out;
}

function matchItem(project: LoadedProject, item: string): Set<string> {
  return item.split(',').map((part) => {
    const m = /^(@)?(\d*\+)?(.+?)(\+\d*)?$/.exec(part.trim());
    if (!m) throw new DbtProjectError('select', null, `cannot read the selector "${part}"`);
    const [, at, pre, atom, post] = m;
    let set = matchAtom(project, atom);
    const base = set;
    if (at) {
      set = neighbours(project, set, false, Infinity);
      set = new Set([...set].flatMap((id) => [...neighbours(project, new Set([id]), true, Infinity)]));
    }
    if (pre) set = new Set([...set, ...neighbours(project, base, true, pre.length > 1 ? Number(pre.slice(0, -1)) : Infinity)]);
    if (post) set = new Set([...set, ...neighbours(project, base, false, post.length > 1 ? Number(post.slice(1)) : Infinity)]);
    return set;
  }).reduce((a, b) => new Set([...a].filter((x) => b.has(x))));
}

function items(spec: string | readonly string[]): string[] {
  return (typeof spec === 'string' ? [spec] : [...spec]).flatMap((s) => s.split(/\s+/)).filter(Boolean);
}

/** The selected models and seeds, then the tests whose every tested node is selected. */
export function selectNodes(project: LoadedProject, select?: string | readonly string[], exclude?: string | readonly string[]): DbtNode[] {
  const enabled = [...project.nodes.values()].filter((n) => n.config.enabled);
  let chosen = new Set<string>();
  const sel = select ? items(select) : [];
  if (!sel.length) for (const n of enabled) if (n.kind !== 'test') chosen.add(n.uniqueId);
  for (const item of sel) for (const id of matchItem(project, item)) chosen.add(id);
  for (const item of exclude ? items(exclude) : []) for (const id of matchItem(project, item)) chosen.delete(id);
  chosen = new Set([...chosen].filter((id) => project.nodes.get(id)!.kind !== 'test'));
  for (const n of enabled) {
    if (n.kind === 'test' && n.dependsOn.length && n.dependsOn.every((d) => chosen.has(d))) chosen.add(n.uniqueId);
  }
  return enabled.filter((n) => chosen.has(n.uniqueId));
}
