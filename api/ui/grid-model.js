// The grid's model and markup: task rows in DAG order under their (nested, collapsible)
// groups, run columns oldest → newest, and one cell per run × task. The whole grid is one
// HTML string; live updates patch single cells through an index built on first use.
import { cellState, countsGradient, countsText, esc, groupState, stateClass, topoOrder } from './api.js';

/** Rows: groups (with their descendant task indexes) and tasks, in display order. */
export function buildRows(gridTasks, dagTasks) {
  const upstream = new Map((dagTasks ?? []).map((t) => [t.taskId, t.upstream]));
  const indexOf = new Map(gridTasks.map((t, i) => [t.taskId, i]));
  const order = topoOrder(gridTasks.map((t) => t.taskId), (id) => upstream.get(id));
  const root = { id: '', children: [], members: [] };
  const groups = new Map([['', root]]);
  const groupNode = (gid) => {
    let g = groups.get(gid);
    if (g) return g;
    const cut = gid.lastIndexOf('.');
    const parent = groupNode(cut < 0 ? '' : gid.slice(0, cut));
    g = { kind: 'group', id: gid, name: gid.slice(cut + 1), children: [], members: [], parent };
    groups.set(gid, g);
    parent.children.push(g);
    return g;
  };
  for (const id of order) {
    const i = indexOf.get(id);
    const t = gridTasks[i];
    const g = groupNode(t.groupId ?? '');
    g.children.push({ kind: 'task', index: i, task: t });
    for (let p = g; p && p.id !== ''; p = p.parent) p.members.push(i);
  }
  const rows = [];
  const walk = (node, depth, ancestors) => {
    for (const child of node.children) {
      if (child.kind === 'task') {
        rows.push({ kind: 'task', index: child.index, task: child.task, depth, ancestors, name: child.task.groupId ? child.task.taskId.slice(child.task.groupId.length + 1) : child.task.taskId });
      } else {
        rows.push({ kind: 'group', id: child.id, name: child.name, members: child.members, depth, ancestors });
        walk(child, depth + 1, [...ancestors, child.id]);
      }
    }
  };
  walk(root, 0, []);
  return rows;
}

export function cellAttrs(value) {
  const state = cellState(value);
  const mixed = value && typeof value === 'object';
  const style = mixed && state === 'mixed' ? ` style="background:${countsGradient(value)}"` : '';
  return { state, cls: `c ${stateClass(state === 'mixed' ? 'none' : state)}${mixed ? ' m' : ''}`, style, text: mixed ? countsText(value) : '' };
}

function runBar(run, maxSeconds) {
  const secs = run.startDate ? ((run.endDate ? new Date(run.endDate) : new Date()) - new Date(run.startDate)) / 1000 : 0;
  const h = Math.max(4, Math.round((secs / (maxSeconds || 1)) * 44));
  return `<button type="button" class="bar ${stateClass(run.state)}" data-runhead="${esc(run.runId)}" data-state="${esc(run.state)}" style="height:${h}px" title="${esc(`${run.runId}\n${run.state}`)}" aria-label="${esc(`Run ${run.runId}: ${run.state}`)}"></button>`;
}

export function maxRunSeconds(runs) {
  return Math.max(1, ...runs.map((r) => (r.startDate ? ((r.endDate ? new Date(r.endDate) : new Date()) - new Date(r.startDate)) / 1000 : 0)));
}

/**
 * The grid's HTML: `runs` are in display order (oldest first), `cellsOf(runId)` gives a run's
 * cells. Rows are flex rows of fixed height holding the cell buttons directly: with 12,500
 * cells, fewer elements than a table means a faster first layout.
 */
export function gridHtml(rows, runs, cellsOf, collapsed) {
  const max = maxRunSeconds(runs);
  const out = [];
  out.push(`<div class="gt" style="--runs:${runs.length}">`);
  out.push(`<div class="gr gh"><span class="name">Task</span>${runs.map((r) => `<span class="run">${runBar(r, max)}</span>`).join('')}</div>`);
  for (const row of rows) {
    const hidden = row.ancestors.some((a) => collapsed.has(a)) ? ' hidden' : '';
    const anc = esc(row.ancestors.join(' '));
    const pad = ` style="padding-left:${6 + row.depth * 14}px"`;
    if (row.kind === 'group') {
      const open = !collapsed.has(row.id);
      out.push(`<div class="gr grp" data-group="${esc(row.id)}" data-anc="${anc}"${hidden}><span class="name"${pad}><button type="button" class="toggle" data-toggle="${esc(row.id)}" aria-expanded="${open}">${open ? '▾' : '▸'} ${esc(row.name)}</button></span>`);
      for (const r of runs) {
        const st = groupState(row.members.map((i) => cellsOf(r.runId)?.[i]));
        out.push(`<span class="gc ${stateClass(st)}" data-grun="${esc(r.runId)}" data-gstate="${esc(st)}"></span>`);
      }
    } else {
      const t = row.task;
      out.push(`<div class="gr" data-anc="${anc}"${hidden}><span class="name"${pad}><span class="tname" title="${esc(t.taskId)}">${esc(row.name)}</span>${t.mapped ? ' <span class="mapped" title="mapped task">[ ]</span>' : ''}</span>`);
      const task = esc(t.taskId);
      for (const r of runs) {
        const a = cellAttrs(cellsOf(r.runId)?.[row.index]);
        out.push(`<button type="button" class="${a.cls}" data-run="${esc(r.runId)}" data-task="${task}" data-state="${esc(a.state)}"${a.style}></button>`);
      }
    }
    out.push('</div>');
  }
  out.push('</div>');
  return out.join('');
}

/** Cell elements by run and task, built once on the first live update. */
export class CellIndex {
  constructor(container) {
    this.container = container;
    this.map = null;
  }

  get(runId, taskId) {
    if (!this.map) {
      this.map = new Map();
      for (const el of this.container.querySelectorAll('button.c')) this.map.set(`${el.dataset.run}\n${el.dataset.task}`, el);
    }
    return this.map.get(`${runId}\n${taskId}`);
  }
}

export function patchCell(el, value) {
  const a = cellAttrs(value);
  el.className = a.cls;
  el.dataset.state = a.state;
  el.removeAttribute('title');
  el.removeAttribute('aria-label');
  if (a.style) el.style.background = countsGradient(value);
  else el.style.removeProperty('background');
}
