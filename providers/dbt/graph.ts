/**
 * The project's graph: `ref()` and `source()` resolved to nodes (an unknown name fails with the
 * file and line), cycles refused, and the edges between the nodes that become tasks, with
 * ephemeral models (no task of their own) looked through.
 */
import { findCycle } from 'updraft';
import { DbtProjectError } from './errors.ts';
import type { DbtNode, LoadedProject } from './project.ts';

export function resolveGraph(project: LoadedProject): void {
  const byName = new Map<string, DbtNode>();
  for (const n of project.nodes.values()) if (n.kind !== 'test' && n.config.enabled) byName.set(n.name, n);
  for (const node of project.nodes.values()) {
    if (!node.config.enabled) continue;
    const deps = new Set<string>();
    for (const ref of node.refs) {
      const target = byName.get(ref.name);
      if (!target) {
        const known = [...byName.keys()].sort();
        const close = known.filter((k) => k.includes(ref.name) || ref.name.includes(k)).slice(0, 5);
        throw new DbtProjectError(node.path, ref.line || null, `ref('${ref.name}') names no model or seed${close.length ? `; did you mean ${close.join(', ')}?` : ''}`);
      }
      deps.add(target.uniqueId);
    }
    for (const src of node.sources) {
      if (!project.sources.has(`${src.source}.${src.table}`)) {
        throw new DbtProjectError(node.path, src.line || null, `source('${src.source}', '${src.table}') is not declared in any schema.yml sources: block`);
      }
    }
    if (node.attachedTo) deps.add(node.attachedTo);
    node.dependsOn = [...deps];
  }
  const cycle = findCycle(project.nodes.keys(), (id) => project.nodes.get(id)?.dependsOn ?? []);
  if (cycle) {
    const first = project.nodes.get(cycle[0])!;
    throw new DbtProjectError(first.path, null, `the models form a cycle: ${cycle.map((id) => project.nodes.get(id)!.name).join(' → ')}`);
  }
}


/** The nodes a task of `node` waits for: its dependencies, looking through ephemeral models. */
export function taskUpstreams(project: LoadedProject, node: DbtNode): string[] {
  const out = new Set<string>();
  const walk = (ids: readonly string[]) => {
    for (const id of ids) {
      const dep = project.nodes.get(id)!;
      if (dep.kind === 'model' && dep.config.materialized === 'ephemeral') walk(dep.dependsOn);
      else out.add(id);
    }
  };
  walk(node.dependsOn);
  return [...out];
}

/** Nodes in an order where every node comes after what it depends on. */
export function topoOrder(project: LoadedProject, ids: Iterable<string>): DbtNode[] {
  const wanted = new Set(ids);
  const done = new Set<string>();
  const out: DbtNode[] = [];
  const visit = (id: string) => {
    if (done.has(id)) return;
    done.add(id);
    for (const d of project.nodes.get(id)!.dependsOn) if (wanted.has(d)) visit(d);
    out.push(project.nodes.get(id)!);
  };
  for (const id of wanted) visit(id);
  return out;
}
