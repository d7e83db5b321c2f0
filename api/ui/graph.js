// The graph of one DAG as SVG: a layered layout (each task's layer is its longest path from a
// root, left to right), nodes ordered by a barycenter sweep, edges as curves, nodes coloured by
// their state in the chosen run. Task groups collapse into one node with their edges rerouted.
import { api, COLOR, cellState, countsText, dagHeader, enc, esc, fmtTime, groupState, legend, stateClass, stream, tiPath, topoOrder, wirePauseSwitches } from './api.js';

const W = 184;
const H = 46;
const GX = 48;
const GY = 18;
const PAD = 24;

/** Group ids of a task, outermost first: "shop.marts" → ["shop", "shop.marts"]. */
function groupChain(groupId) {
  if (!groupId) return [];
  const parts = groupId.split('.');
  return parts.map((_, i) => parts.slice(0, i + 1).join('.'));
}

const chainOf = (n) => (n.kind === 'group' ? groupChain(n.groupId) : groupChain(n.task.groupId));

export function layout(tasks, collapsed) {
  const rep = new Map();
  const nodes = new Map();
  for (const t of tasks) {
    const closedGroup = groupChain(t.groupId).find((g) => collapsed.has(g));
    const id = closedGroup ? `group:${closedGroup}` : t.taskId;
    rep.set(t.taskId, id);
    if (!nodes.has(id)) {
      nodes.set(id, closedGroup
        ? { id, kind: 'group', groupId: closedGroup, label: closedGroup.slice(closedGroup.lastIndexOf('.') + 1), members: [] }
        : { id, kind: 'task', task: t, label: t.groupId ? t.taskId.slice(t.groupId.length + 1) : t.taskId, members: [] });
    }
    nodes.get(id).members.push(t.taskId);
  }
  const edges = new Map();
  const up = new Map([...nodes.keys()].map((id) => [id, new Set()]));
  for (const t of tasks) {
    for (const d of t.downstream) {
      const a = rep.get(t.taskId);
      const b = rep.get(d);
      if (!b || a === b) continue;
      edges.set(`${a}\n${b}`, [a, b]);
      up.get(b).add(a);
    }
  }
  const order = topoOrder([...nodes.keys()], (id) => up.get(id));
  const layerOf = new Map();
  for (const id of order) layerOf.set(id, Math.max(0, ...[...up.get(id)].map((u) => (layerOf.get(u) ?? 0) + 1)));
  const layers = [];
  for (const id of order) (layers[layerOf.get(id)] ??= []).push(id);
  // Barycenter sweeps: each node moves toward the mean position of its neighbours.
  const down = new Map([...nodes.keys()].map((id) => [id, []]));
  for (const [a, b] of edges.values()) down.get(a).push(b);
  // Members of one group stay together within a layer, groups in the same order in every layer.
  const groupRank = new Map();
  for (const id of order) for (const gid of chainOf(nodes.get(id))) if (!groupRank.has(gid)) groupRank.set(gid, groupRank.size);
  const keyOf = new Map([...nodes.values()].map((n) => [n.id, chainOf(n).map((gid) => groupRank.get(gid))]));
  const groupCmp = (a, b) => {
    const x = keyOf.get(a);
    const y = keyOf.get(b);
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
    return x.length - y.length;
  };
  const pos = new Map();
  const place = () => layers.forEach((l) => l.forEach((id, i) => pos.set(id, i)));
  place();
  for (const l of layers) l.sort((a, b) => groupCmp(a, b) || pos.get(a) - pos.get(b));
  place();
  for (let pass = 0; pass < 4; pass++) {
    const forward = pass % 2 === 0;
    const seq = forward ? layers.slice(1) : layers.slice(0, -1).reverse();
    for (const l of seq) {
      const bary = new Map(l.map((id) => {
        const ns = forward ? [...up.get(id)] : down.get(id);
        return [id, ns.length ? ns.reduce((s, n) => s + pos.get(n), 0) / ns.length : pos.get(id)];
      }));
      l.sort((a, b) => groupCmp(a, b) || bary.get(a) - bary.get(b));
      l.forEach((id, i) => pos.set(id, i));
    }
  }
  // Vertical bands: each expanded group owns rows of its own in every layer (its direct
  // nodes, then its subgroups stacked), so group boxes nest and never overlap.
  const band = new Map([['', { id: '', kids: [], direct: new Map() }]]);
  const bandOf = (gid) => {
    let b = band.get(gid);
    if (b) return b;
    const cut = gid.lastIndexOf('.');
    b = { id: gid, kids: [], direct: new Map() };
    band.set(gid, b);
    bandOf(cut < 0 ? '' : gid.slice(0, cut)).kids.push(b);
    return b;
  };
  for (const l of layers) {
    l.forEach((id, li) => {
      const n = nodes.get(id);
      const chain = chainOf(n);
      const owner = n.kind === 'group' ? chain.slice(0, -1) : chain;
      const b = bandOf(owner.length ? owner[owner.length - 1] : '');
      const layer = layerOf.get(id);
      (b.direct.get(layer) ?? b.direct.set(layer, []).get(layer)).push(id);
      void li;
    });
  }
  const HEAD = 22;
  const xy = new Map();
  const boxes = [];
  const lay = (b, top, depth) => {
    const rows = Math.max(0, ...[...b.direct.values()].map((ids) => ids.length));
    let y = top + (b.id ? HEAD : 0);
    for (const [layer, ids] of b.direct) ids.forEach((id, i) => xy.set(id, { x: PAD + layer * (W + GX), y: y + i * (H + GY) }));
    y += rows * (H + GY);
    b.kids.sort((p, q) => (groupRank.get(p.id) ?? 0) - (groupRank.get(q.id) ?? 0));
    for (const k of b.kids) y = lay(k, y, depth + 1) + GY;
    if (b.kids.length) y -= GY;
    const bottom = y + (b.id ? 8 : 0);
    if (b.id) boxes.push({ id: b.id, depth, top, bottom });
    return bottom;
  };
  const height = lay(band.get(''), PAD, 0) + PAD;
  // A box spans the layers its nodes (and its subgroups' nodes) are in.
  for (const box of boxes) {
    const inside = [...xy].filter(([id]) => chainOf(nodes.get(id)).includes(box.id) && !(nodes.get(id).kind === 'group' && nodes.get(id).groupId === box.id));
    const xs = inside.map(([, p]) => p.x);
    const inset = Math.max(4, 16 - box.depth * 4);
    Object.assign(box, { x0: Math.min(...xs) - inset, x1: Math.max(...xs) + W + inset });
  }
  return { nodes, edges: [...edges.values()], xy, boxes, width: PAD * 2 + layers.length * (W + GX) - GX, height };
}

function trim(s, n = 22) {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

export function graphSvg(dag, g, valueOf, runId, collapsed) {
  const out = [`<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="${g.width}" height="${g.height}" viewBox="0 0 ${g.width} ${g.height}" role="img" aria-label="${esc(`Graph of ${dag.dagId}`)}">`,
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="#64748b"/></marker></defs>'];
  // Boxes of expanded groups, outermost first.
  for (const b of [...g.boxes].sort((p, q) => p.depth - q.depth)) {
    if (!Number.isFinite(b.x0)) continue;
    out.push(`<g class="gbox"><rect x="${b.x0}" y="${b.top}" width="${b.x1 - b.x0}" height="${b.bottom - b.top}" rx="8"/>
      <a href="#" data-collapse="${esc(b.id)}" role="button" aria-label="${esc(`Collapse group ${b.id}`)}"><text x="${b.x0 + 8}" y="${b.top + 15}">▾ ${esc(b.id)}</text></a></g>`);
  }
  for (const [a, b] of g.edges) {
    const p = g.xy.get(a);
    const q = g.xy.get(b);
    const x1 = p.x + W;
    const y1 = p.y + H / 2;
    const x2 = q.x - 2;
    const y2 = q.y + H / 2;
    const dx = Math.max(24, (x2 - x1) / 2);
    out.push(`<path class="edge" d="M${x1} ${y1}C${x1 + dx} ${y1} ${x2 - dx} ${y2} ${x2} ${y2}" marker-end="url(#arrow)"/>`);
  }
  for (const n of g.nodes.values()) {
    const { x, y } = g.xy.get(n.id);
    const values = n.members.map(valueOf);
    const state = n.kind === 'group' ? groupState(values) : cellState(values[0]);
    const mapped = n.kind === 'task' && values[0] && typeof values[0] === 'object';
    const color = state === 'mixed' ? '#64748b' : COLOR[state] ?? '#94a3b8';
    const sub = n.kind === 'group' ? `group · ${n.members.length} tasks` : `${n.task.operator}${n.task.mapped ? ' [ ]' : ''}`;
    const line2 = mapped ? countsText(values[0]) : state === 'none' ? '' : state.replace(/_/g, ' ');
    const body = `<title>${esc(n.kind === 'group' ? n.groupId : n.task.taskId)}: ${esc(state)}</title>
      <rect x="${x}" y="${y}" width="${W}" height="${H}" rx="6" class="node-box ${stateClass(state)}" style="stroke:${color}"/>
      <rect x="${x}" y="${y}" width="6" height="${H}" rx="2" fill="${color}"/>
      <text x="${x + 14}" y="${y + 18}" class="nlabel">${n.kind === 'group' ? '▸ ' : ''}${esc(trim(n.label))}</text>
      <text x="${x + 14}" y="${y + 35}" class="nsub">${esc(trim(sub, 18))}<tspan class="nstate" x="${x + W - 8}" text-anchor="end">${esc(trim(line2, 14))}</tspan></text>`;
    const attrs = `class="node" data-node="${esc(n.id)}" data-state="${esc(state)}"`;
    if (n.kind === 'group') out.push(`<a href="#" ${attrs} data-expand="${esc(n.groupId)}" role="button" aria-label="${esc(`Expand group ${n.groupId}`)}">${body}</a>`);
    else if (runId) out.push(`<a href="${tiPath(dag.dagId, runId, n.task.taskId)}" ${attrs}>${body}</a>`);
    else out.push(`<g ${attrs}>${body}</g>`);
  }
  out.push('</svg>');
  return out.join('');
}

export async function graphView(root, [dagId], query, current) {
  document.title = `${dagId} · Graph · Updraft`;
  const [dag, grid] = await Promise.all([api(`/dags/${enc(dagId)}`), api(`/dags/${enc(dagId)}/grid`, { query: { limit: 25 } })]);
  if (!current()) return;
  let runs = grid.runs;
  let runId = query.get('run') && runs.some((r) => r.runId === query.get('run')) ? query.get('run') : runs[0]?.runId ?? null;
  const values = new Map();
  const load = (g) => g.runs.forEach((r, ri) => g.tasks.forEach((t, ti) => values.set(`${r.runId}\n${t.taskId}`, g.cells[ri][ti])));
  load(grid);
  const allGroups = new Set(dag.tasks.flatMap((t) => groupChain(t.groupId)));
  const collapsed = new Set(dag.tasks.length > 40 ? [...allGroups].filter((gid) => !gid.includes('.')) : []);

  root.innerHTML = `<section class="pad">${dagHeader(dag, 'graph')}
    <div class="row between wrap toolbar">
      <div class="row wrap"><label for="graph-run">Run</label>
        <select id="graph-run">${runs.length ? '' : '<option value="">no runs yet</option>'}</select>
        <button type="button" class="btn small" id="g-fit" aria-pressed="true">Fit to width</button>
        ${allGroups.size ? '<button type="button" class="btn small" id="g-expand">Expand groups</button><button type="button" class="btn small" id="g-collapse">Collapse groups</button>' : ''}
      </div>${legend()}</div>
    <div class="graph-scroll card" id="graph"></div></section>`;
  wirePauseSwitches(root);
  const select = root.querySelector('#graph-run');
  const fillRuns = () => {
    select.innerHTML = runs.map((r) => `<option value="${esc(r.runId)}"${r.runId === runId ? ' selected' : ''}>${esc(`${fmtTime(r.logicalDate)} · ${r.state} · ${r.runId}`)}</option>`).join('') || '<option value="">no runs yet</option>';
  };
  fillRuns();
  const box = root.querySelector('#graph');
  const fit = root.querySelector('#g-fit');
  const draw = () => {
    const g = layout(dag.tasks, collapsed);
    box.innerHTML = graphSvg(dag, g, (taskId) => (runId ? values.get(`${runId}\n${taskId}`) : null), runId, collapsed);
    // Fit wide graphs to the page unless that makes the labels too small to read.
    const fits = fit.getAttribute('aria-pressed') === 'true' && box.clientWidth / g.width >= 0.5;
    box.classList.toggle('fit', fits);
  };
  fit.addEventListener('click', () => {
    fit.setAttribute('aria-pressed', String(fit.getAttribute('aria-pressed') !== 'true'));
    draw();
  });
  draw();
  select.addEventListener('change', () => {
    runId = select.value || null;
    history.replaceState(null, '', `${location.pathname}${runId ? `?run=${enc(runId)}` : ''}`);
    draw();
  });
  root.addEventListener('click', (e) => {
    const t = e.target.closest('[data-expand],[data-collapse],#g-expand,#g-collapse');
    if (!t) return;
    e.preventDefault();
    if (t.id === 'g-expand') collapsed.clear();
    else if (t.id === 'g-collapse') for (const gid of allGroups) collapsed.add(gid);
    else if (t.dataset.expand) collapsed.delete(t.dataset.expand);
    else collapsed.add(t.dataset.collapse);
    draw();
    const again = box.querySelector(`[data-expand="${CSS.escape(t.dataset.collapse ?? '')}"],[data-collapse="${CSS.escape(t.dataset.expand ?? '')}"]`);
    again?.focus();
  });

  let pending = null;
  return stream(`/events?dagId=${enc(dagId)}`, {
    grid: (ev) => {
      for (const c of ev.cells) values.set(`${c.runId}\n${c.taskId}`, c.value);
      if (ev.runs.some((r) => !runs.some((x) => x.runId === r.runId)) || ev.runs.length) {
        clearTimeout(pending);
        pending = setTimeout(async () => {
          const g = await api(`/dags/${enc(dagId)}/grid`, { query: { limit: 25 } }).catch(() => null);
          if (!g) return;
          runs = g.runs;
          load(g);
          runId ??= runs[0]?.runId ?? null;
          fillRuns();
          draw();
        }, 200);
      }
      if (ev.cells.some((c) => c.runId === runId)) draw();
    },
  });
}
