// The grid of one DAG: runs × tasks coloured by state, live over the DAG's event stream, with
// a details pane for the selected run (its actions, for admins) or a mapped task's indexes.
import {
  api, badge, between, confirmStep, countsText, dagHeader, enc, esc, errorBox, fmtDuration, fmtTime, go, isAdmin, legend,
  pretty, stateClass, stream, tiPath, toast, wirePauseSwitches, dagPath, groupState,
} from './api.js';
import { CellIndex, buildRows, gridHtml, patchCell } from './grid-model.js';

const LIMIT = 25;

export async function gridView(root, [dagId], query, current) {
  document.title = `${dagId} · Grid · Updraft`;
  const before = query.get('before');
  const [dag, first] = await Promise.all([
    api(`/dags/${enc(dagId)}`),
    api(`/dags/${enc(dagId)}/grid`, { query: { limit: LIMIT, before } }),
  ]);
  if (!current()) return;
  const collapsed = new Set();
  let grid = first;
  let rows = buildRows(grid.tasks, dag.tasks);
  let selectedRun = query.get('run');
  let closed = false;
  /** run id → that run's cells (task order of the grid answer). */
  let cellsByRun = new Map();
  let display = [];
  let index;

  root.innerHTML = `<section class="pad">
    ${dagHeader(dag, 'grid')}
    <div class="row between wrap toolbar">
      <div class="row wrap">
        <a class="btn small" id="older" href="#">◀ Older runs</a>
        ${before ? `<a class="btn small" href="${dagPath(dagId)}">Newest runs ▶</a>` : ''}
        <button type="button" class="btn small" id="expand-all">Expand groups</button>
        <button type="button" class="btn small" id="collapse-all">Collapse groups</button>
      </div>
      ${legend()}
    </div>
    <div class="grid-layout">
      <div class="grid-scroll" id="grid" role="region" aria-label="Runs by task" tabindex="-1"></div>
      <aside class="details card" id="details" aria-live="polite"><p class="muted">Select a run (the bars at the top) or a task instance.</p></aside>
    </div>
  </section>`;
  wirePauseSwitches(root);
  const container = root.querySelector('#grid');
  const details = root.querySelector('#details');

  function paint() {
    cellsByRun = new Map(grid.runs.map((r, i) => [r.runId, grid.cells[i]]));
    display = [...grid.runs].reverse();
    container.innerHTML = grid.runs.length ? gridHtml(rows, display, (runId) => cellsByRun.get(runId), collapsed)
      : `<p class="muted pad">No runs${before ? ' before this date' : ' yet'}.${isAdmin() && !before ? ` <a href="${dagPath(dagId, 'trigger')}">Trigger one</a>.` : ''}</p>`;
    index = new CellIndex(container);
    const older = root.querySelector('#older');
    const oldest = grid.runs[grid.runs.length - 1];
    older.hidden = !oldest || grid.runs.length < LIMIT;
    if (oldest) older.href = `${dagPath(dagId)}?before=${enc(oldest.logicalDate)}`;
    if (selectedRun) markSelected();
  }
  paint();
  requestAnimationFrame(() => performance.mark('grid-painted'));
  if (selectedRun && cellsByRun.has(selectedRun)) void showRun(selectedRun);

  function markSelected() {
    for (const el of container.querySelectorAll('.bar.sel')) el.classList.remove('sel');
    container.querySelector(`[data-runhead="${CSS.escape(selectedRun)}"]`)?.classList.add('sel');
  }

  async function showRun(runId) {
    selectedRun = runId;
    markSelected();
    const r = grid.runs.find((x) => x.runId === runId);
    details.innerHTML = `<h2>Run</h2><p class="mono break">${esc(runId)}</p>${badge(r?.state)}`;
    let run;
    try {
      run = await api(`/dags/${enc(dagId)}/runs/${enc(runId)}`);
    } catch (err) {
      details.innerHTML = errorBox(err);
      return;
    }
    if (selectedRun !== runId || closed) return;
    const conf = run.conf && Object.keys(run.conf).length ? `<h3>Conf</h3><pre class="code">${esc(pretty(run.conf))}</pre>` : '';
    details.innerHTML = `<h2>Run</h2><p class="mono break">${esc(run.runId)}</p>
      <dl class="facts">
        <dt>State</dt><dd>${badge(run.state)}</dd><dt>Type</dt><dd>${esc(run.runType)}</dd>
        <dt>Logical date</dt><dd>${fmtTime(run.logicalDate)}</dd><dt>Started</dt><dd>${fmtTime(run.startDate)}</dd>
        <dt>Ended</dt><dd>${fmtTime(run.endDate)}</dd><dt>Duration</dt><dd>${fmtDuration(between(run.startDate, run.endDate))}</dd>
      </dl>${conf}
      <p><a href="${dagPath(dagId, 'graph')}?run=${enc(run.runId)}">Graph of this run</a></p>
      ${isAdmin() ? `<div class="actions" role="group" aria-label="Run actions">
        <button type="button" class="btn" data-run-action="clear">Clear run</button>
        <button type="button" class="btn" data-run-action="clear-failed">Clear failed</button>
        <button type="button" class="btn" data-run-action="success">Mark success</button>
        <button type="button" class="btn danger" data-run-action="failed">Mark failed</button></div>` : ''}`;
  }

  async function showMapped(runId, taskId) {
    details.innerHTML = `<h2>Mapped task</h2><p class="mono break">${esc(taskId)}</p><p class="muted">Loading map indexes…</p>`;
    try {
      const list = await api(`/dags/${enc(dagId)}/runs/${enc(runId)}/tasks`, { query: { taskId, limit: 1000 } });
      if (closed) return;
      const counts = {};
      for (const t of list.taskInstances) counts[t.state] = (counts[t.state] ?? 0) + 1;
      details.innerHTML = `<h2>Mapped task</h2><p class="mono break">${esc(taskId)}</p><p class="mono">${esc(runId)}</p>
        <p>${esc(countsText(counts))}</p>
        <ul class="map-list" id="map-list">${list.taskInstances.map((t) => `<li><a href="${tiPath(dagId, runId, taskId, t.mapIndex)}"><span class="sw ${stateClass(t.state)}"></span>[${t.mapIndex}] ${esc(t.state)}</a></li>`).join('')}</ul>`;
    } catch (err) {
      details.innerHTML = errorBox(err);
    }
  }

  async function runAction(kind) {
    const runId = selectedRun;
    const labels = { clear: ['Clear run', 'Clear every task instance of this run? They run again.'], 'clear-failed': ['Clear failed', 'Clear the failed and upstream-failed task instances of this run?'],
      success: ['Mark success', 'Mark this run and its unfinished task instances success?'], failed: ['Mark failed', 'Mark this run and its unfinished task instances failed?'] };
    if (!(await confirmStep(labels[kind][0], `${labels[kind][1]}\n${runId}`, labels[kind][0]))) return;
    try {
      const r = await api(`/dags/${enc(dagId)}/runs/${enc(runId)}/actions`, { method: 'POST', body: { action: kind === 'clear-failed' ? 'clear' : kind, onlyFailed: kind === 'clear-failed' } });
      toast(`${labels[kind][0]}: ${r.changed} task instance(s) changed`);
      void showRun(runId);
    } catch (err) {
      toast(err.message, 'bad');
    }
  }

  root.addEventListener('click', (e) => {
    const cell = e.target.closest('button.c');
    if (cell) {
      const task = grid.tasks.find((t) => t.taskId === cell.dataset.task);
      if (task?.mapped) void showMapped(cell.dataset.run, cell.dataset.task);
      else go(tiPath(dagId, cell.dataset.run, cell.dataset.task));
      return;
    }
    const head = e.target.closest('[data-runhead]');
    if (head) return void showRun(head.dataset.runhead);
    const toggle = e.target.closest('[data-toggle]');
    if (toggle) return setCollapsed(toggle.dataset.toggle, !collapsed.has(toggle.dataset.toggle));
    const action = e.target.closest('[data-run-action]');
    if (action) return void runAction(action.dataset.runAction);
    if (e.target.id === 'expand-all' || e.target.id === 'collapse-all') {
      collapsed.clear();
      if (e.target.id === 'collapse-all') for (const r of rows) if (r.kind === 'group') collapsed.add(r.id);
      applyCollapsed();
    }
  });
  // Names for the cells are given when they are looked at, which keeps the markup small.
  const describe = (e) => {
    const cell = e.target.closest?.('button.c');
    if (!cell || cell.title) return;
    const label = `${cell.dataset.task} · ${cell.dataset.run}: ${cell.dataset.state}`;
    cell.title = label;
    cell.setAttribute('aria-label', label);
  };
  container.addEventListener('mouseover', describe);
  container.addEventListener('focusin', describe);

  function setCollapsed(groupId, yes) {
    if (yes) collapsed.add(groupId);
    else collapsed.delete(groupId);
    applyCollapsed();
  }
  function applyCollapsed() {
    for (const tr of container.querySelectorAll('.gr[data-anc]')) {
      const anc = tr.dataset.anc ? tr.dataset.anc.split(' ') : [];
      tr.hidden = anc.some((a) => collapsed.has(a));
      const t = tr.dataset.group && tr.querySelector('[data-toggle]');
      if (t) {
        const open = !collapsed.has(tr.dataset.group);
        t.setAttribute('aria-expanded', String(open));
        t.firstChild.textContent = `${open ? '▾' : '▸'} ${t.firstChild.textContent.slice(2)}`;
      }
    }
  }

  // A refetch drops events that come before its request (the answer covers them) and replays
  // those that come while it is in flight (they may be newer than the answer).
  let refetching = null;
  let queued = null;
  function refetch() {
    if (refetching) return;
    refetching = setTimeout(async () => {
      queued = [];
      try {
        const [d, g] = await Promise.all([api(`/dags/${enc(dagId)}`), api(`/dags/${enc(dagId)}/grid`, { query: { limit: LIMIT, before } })]);
        if (closed) return;
        const same = g.tasks.length === grid.tasks.length && g.tasks.every((t, i) => t.taskId === grid.tasks[i].taskId)
          && g.runs.length === grid.runs.length && g.runs.every((r, i) => r.runId === grid.runs[i].runId);
        if (same) {
          // Same runs and tasks: patch only what differs.
          const cells = [];
          g.runs.forEach((r, ri) => g.tasks.forEach((t, ti) => {
            if (JSON.stringify(g.cells[ri][ti]) !== JSON.stringify(grid.cells[ri][ti])) cells.push({ runId: r.runId, taskId: t.taskId, value: g.cells[ri][ti] });
          }));
          apply({ runs: g.runs.filter((r, i) => r.state !== grid.runs[i].state || r.endDate !== grid.runs[i].endDate), cells });
        } else {
          grid = g;
          rows = buildRows(grid.tasks, d.tasks);
          paint();
        }
      } catch { /* the next event tries again */ } finally {
        const replay = queued ?? [];
        refetching = null;
        queued = null;
        for (const ev of replay) onGrid(ev);
      }
    }, 150);
  }

  function onGrid(ev) {
    if (queued) return void queued.push(ev);
    if (refetching) return;
    if (!before && ev.runs.some((r) => !cellsByRun.has(r.runId))) return refetch();
    apply(ev);
  }

  function apply(ev) {
    const taskIndex = new Map(grid.tasks.map((t, i) => [t.taskId, i]));
    const touched = new Set();
    for (const r of ev.runs) {
      const known = grid.runs.find((x) => x.runId === r.runId);
      if (!known) continue;
      Object.assign(known, r);
      const bar = container.querySelector(`[data-runhead="${CSS.escape(r.runId)}"]`);
      if (bar) { bar.className = `bar ${stateClass(r.state)}${r.runId === selectedRun ? ' sel' : ''}`; bar.dataset.state = r.state; }
      if (r.runId === selectedRun) void showRun(r.runId);
    }
    for (const c of ev.cells) {
      const cells = cellsByRun.get(c.runId);
      const i = taskIndex.get(c.taskId);
      if (!cells || i === undefined) continue;
      cells[i] = c.value;
      const el = index.get(c.runId, c.taskId);
      if (el) patchCell(el, c.value);
      touched.add(c.runId);
    }
    if (touched.size) patchGroups(touched);
  }

  function patchGroups(runIds) {
    for (const row of rows) {
      if (row.kind !== 'group') continue;
      const tr = container.querySelector(`.gr[data-group="${CSS.escape(row.id)}"]`);
      for (const runId of runIds) {
        const el = tr?.querySelector(`[data-grun="${CSS.escape(runId)}"]`);
        if (!el) continue;
        const st = groupState(row.members.map((i) => cellsByRun.get(runId)[i]));
        el.className = `gc ${stateClass(st)}`;
        el.dataset.gstate = st;
      }
    }
  }

  const stop = stream(`/events?dagId=${enc(dagId)}`, { grid: onGrid, hello: () => refetch() });
  return () => { closed = true; stop(); };
}
