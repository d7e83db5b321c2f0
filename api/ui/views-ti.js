// One task instance: state and facts, tries, the trigger it waits on, logs per try (streamed
// while it runs), XComs, rendered template fields (SQL formatted), and admin actions. It
// follows the DAG's event stream and reloads itself when its cell changes.
import {
  ACTIVE, api, badge, between, confirmStep, countsText, dagPath, enc, esc, errorBox, fmtAge, fmtDuration, fmtTime, isAdmin, pretty,
  stateClass, stream, tiPath, toast,
} from './api.js';
import { formatSql, looksLikeSql } from './sql.js';

const base = (dagId, runId, taskId) => `/dags/${enc(dagId)}/runs/${enc(runId)}/tasks/${enc(taskId)}`;

function crumbs(dagId, runId, taskId, mapIndex) {
  return `<nav class="crumbs" aria-label="Breadcrumb"><a href="/dags">DAGs</a> › <a href="${dagPath(dagId)}">${esc(dagId)}</a> ›
    <a href="${dagPath(dagId)}?run=${enc(runId)}">${esc(runId)}</a> › <span>${esc(taskId)}${mapIndex >= 0 ? ` [${mapIndex}]` : ''}</span></nav>`;
}

async function mappedList(root, dagId, runId, taskId) {
  const list = await api(`/dags/${enc(dagId)}/runs/${enc(runId)}/tasks`, { query: { taskId, limit: 1000 } });
  const counts = {};
  for (const t of list.taskInstances) counts[t.state] = (counts[t.state] ?? 0) + 1;
  root.innerHTML = `<section class="pad">${crumbs(dagId, runId, taskId, -1)}<h1>${esc(taskId)} <span class="muted">mapped</span></h1>
    <p>${esc(countsText(counts)) || 'No map indexes yet.'}</p>
    <ul class="map-list" id="map-list">${list.taskInstances.map((t) => `<li><a href="${tiPath(dagId, runId, taskId, t.mapIndex)}"><span class="sw ${stateClass(t.state)}"></span>[${t.mapIndex}] ${esc(t.state)}</a></li>`).join('')}</ul></section>`;
}

function factsHtml(ti) {
  const facts = [
    ['State', badge(ti.state)], ['Operator', esc(ti.operator)], ['Try', `${ti.tryNumber} of ${ti.maxTries}`],
    ['Started', fmtTime(ti.startDate)], ['Ended', fmtTime(ti.endDate)], ['Duration', fmtDuration(ti.duration ?? (ti.startDate && ACTIVE.has(ti.state) ? between(ti.startDate) : null))],
    ['Worker', esc(ti.workerId ?? '—')], ['Pool', esc(ti.pool)], ['Queue', esc(ti.queue)],
  ];
  if (ti.nextRetryAt) facts.push(['Next retry', fmtTime(ti.nextRetryAt)]);
  if (ti.rescheduleDate) facts.push(['Rescheduled for', fmtTime(ti.rescheduleDate)]);
  return `<dl class="facts wide">${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>
    ${ti.error ? `<div class="error"><strong>Error</strong><pre>${esc(ti.error)}</pre></div>` : ''}`;
}

function triggerHtml(tr) {
  if (!tr) return '';
  return `<section class="card trigger" id="trigger"><h2>Waiting on trigger</h2>
    <dl class="facts"><dt>Trigger</dt><dd class="mono">${esc(tr.name)}</dd><dt>Id</dt><dd>${tr.id}</dd>
    <dt>Triggerer</dt><dd class="mono">${esc(tr.triggererId ?? 'not yet assigned')}</dd><dt>Created</dt><dd>${fmtTime(tr.createdDate)} (${fmtAge(tr.ageSeconds)})</dd></dl>
    <h3>Kwargs</h3><pre class="code">${esc(pretty(tr.kwargs))}</pre></section>`;
}

function triesHtml(ti) {
  // The server lists every try, the current one included.
  const tries = [...ti.tries];
  tries.sort((a, b) => b.tryNumber - a.tryNumber);
  if (!tries.length) return '<p class="muted">No tries yet.</p>';
  return `<div class="scroll"><table class="list"><thead><tr><th scope="col">Try</th><th scope="col">State</th><th scope="col">Started</th><th scope="col">Ended</th><th scope="col">Duration</th><th scope="col">Worker</th><th scope="col">Error</th></tr></thead>
    <tbody>${tries.map((t) => `<tr><td>${t.tryNumber}</td><td>${badge(t.state)}</td><td class="nowrap">${fmtTime(t.startDate)}</td><td class="nowrap">${fmtTime(t.endDate)}</td>
    <td>${fmtDuration(t.duration)}</td><td class="mono">${esc(t.workerId ?? '—')}</td><td class="err-cell">${esc(t.error ?? '')}</td></tr>`).join('')}</tbody></table></div>`;
}

/** Rendered fields: strings that hold SQL (the server's dotted paths, or that read as SQL) formatted in <pre>. */
function renderedHtml(r) {
  const entries = Object.entries(r.fields ?? {});
  if (!entries.length) return '<p class="muted">No rendered template fields for this try.</p>';
  const sqlPaths = new Set(r.sqlFields ?? []);
  const blocks = [];
  const walk = (pathKey, key, value) => {
    if (typeof value === 'string' && (sqlPaths.has(pathKey) || looksLikeSql(key, value))) {
      blocks.push(`<h3 class="mono">${esc(pathKey)}</h3><pre class="code sql" data-field="${esc(pathKey)}">${formatSql(value)}</pre>`);
      return true;
    }
    return false;
  };
  const visit = (obj, prefix) => {
    for (const [k, v] of Object.entries(obj)) {
      const p = prefix ? `${prefix}.${k}` : k;
      if (walk(p, k, v)) continue;
      if (v && typeof v === 'object' && !Array.isArray(v)) visit(v, p);
    }
  };
  visit(r.fields, '');
  const all = `<pre class="code">${esc(pretty(r.fields))}</pre>`;
  return blocks.length ? `${blocks.join('')}<details><summary>All fields</summary>${all}</details>` : all;
}

function xcomsHtml(x, mapIndex) {
  const rows = x.xcoms.filter((c) => mapIndex < 0 || c.mapIndex === mapIndex);
  if (!rows.length) return '<p class="muted">No XComs.</p>';
  return `<div class="scroll"><table class="list"><thead><tr><th scope="col">Key</th><th scope="col">Map index</th><th scope="col">Value</th><th scope="col">Created</th></tr></thead>
    <tbody>${rows.map((c) => `<tr><td class="mono">${esc(c.key)}</td><td>${c.mapIndex}</td><td><pre class="code small">${esc(pretty(c.value))}</pre></td><td class="nowrap">${fmtTime(c.createdAt)}</td></tr>`).join('')}</tbody></table></div>`;
}

const logLine = (l) => `<span class="ll lv-${esc(l.level)}"><span class="ts">${fmtTime(l.ts)}</span> <span class="lvl">${esc(l.level.toUpperCase())}</span> ${l.source && l.source !== 'task' ? `<span class="src">[${esc(l.source)}]</span> ` : ''}${esc(l.message)}</span>\n`;

export async function tiView(root, [dagId, runId, taskId], query, current) {
  document.title = `${taskId} · ${dagId} · Updraft`;
  const mapIndex = query.has('mapIndex') ? Number(query.get('mapIndex')) : -1;
  const path = base(dagId, runId, taskId);
  let ti;
  try {
    ti = await api(path, { query: { mapIndex } });
  } catch (err) {
    if (err.status === 404 && mapIndex < 0) {
      const dag = await api(`/dags/${enc(dagId)}`);
      if (dag.tasks.find((t) => t.taskId === taskId)?.mapped) return mappedList(root, dagId, runId, taskId);
    }
    throw err;
  }
  if (!current()) return;
  let closed = false;
  let tryShown = ti.tryNumber;
  let lastLogId = 0;
  let stopLogs = null;

  root.innerHTML = `<section class="pad">${crumbs(dagId, runId, taskId, mapIndex)}
    <div class="row between wrap"><h1>${esc(taskId)}${mapIndex >= 0 ? ` <span class="muted">[${mapIndex}]</span>` : ''}</h1>
    ${isAdmin() ? `<div class="actions" role="group" aria-label="Task instance actions">
      <label class="check"><input type="checkbox" id="ti-downstream"> downstream</label>
      <button type="button" class="btn" data-ti-action="clear">Clear</button>
      <button type="button" class="btn" data-ti-action="success">Mark success</button>
      <button type="button" class="btn danger" data-ti-action="failed">Mark failed</button></div>` : ''}</div>
    <div class="ti-top"><div id="ti-facts" class="card">${factsHtml(ti)}</div><div id="ti-trigger">${triggerHtml(ti.trigger)}</div></div>
    <h2>Tries</h2><div id="ti-tries">${triesHtml(ti)}</div>
    <div class="tabs" role="tablist" aria-label="Task instance details">
      <button type="button" role="tab" id="tab-logs" aria-selected="true" aria-controls="panel-logs">Logs</button>
      <button type="button" role="tab" id="tab-xcom" aria-selected="false" aria-controls="panel-xcom">XCom</button>
      <button type="button" role="tab" id="tab-rendered" aria-selected="false" aria-controls="panel-rendered">Rendered</button>
    </div>
    <div role="tabpanel" id="panel-logs" aria-labelledby="tab-logs">
      <div class="row"><label for="log-try">Try</label><select id="log-try"></select><span id="log-live" class="muted"></span></div>
      <pre class="logs" id="logs" tabindex="0" aria-label="Log lines"></pre></div>
    <div role="tabpanel" id="panel-xcom" aria-labelledby="tab-xcom" hidden><p class="muted">Loading…</p></div>
    <div role="tabpanel" id="panel-rendered" aria-labelledby="tab-rendered" hidden><p class="muted">Loading…</p></div>
  </section>`;
  const logs = root.querySelector('#logs');
  const trySelect = root.querySelector('#log-try');

  function fillTries() {
    const n = Math.max(ti.tryNumber, ...ti.tries.map((t) => t.tryNumber), 1);
    trySelect.innerHTML = Array.from({ length: n }, (_, i) => i + 1).reverse().map((t) => `<option value="${t}"${t === tryShown ? ' selected' : ''}>${t}</option>`).join('');
  }

  async function loadLogs() {
    if (stopLogs) { stopLogs(); stopLogs = null; }
    const want = tryShown;
    logs.textContent = '';
    lastLogId = 0;
    const parts = [];
    for (;;) {
      const page = await api(`${path}/logs`, { query: { mapIndex, try: want, after: lastLogId } }).catch((err) => ({ error: err, lines: [], more: false }));
      if (closed || want !== tryShown) return;
      if (page.error) { logs.innerHTML = errorBox(page.error); return; }
      for (const l of page.lines) parts.push(logLine(l));
      if (page.lines.length) lastLogId = page.lines[page.lines.length - 1].id;
      if (!page.more) break;
    }
    logs.innerHTML = parts.join('') || '<span class="muted">No log lines for this try.</span>';
    const live = ACTIVE.has(ti.state) && want === ti.tryNumber;
    root.querySelector('#log-live').textContent = live ? '● live' : '';
    if (!live) return;
    stopLogs = stream(`/events/logs?dagId=${enc(dagId)}&runId=${enc(runId)}&taskId=${enc(taskId)}&mapIndex=${mapIndex}&try=${want}&after=${lastLogId}`, {
      logs: (ev) => {
        if (ev.tryNumber !== tryShown) return;
        const fresh = ev.lines.filter((l) => l.id > lastLogId);
        if (!fresh.length) return;
        const atBottom = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 8;
        if (!lastLogId) logs.textContent = '';
        logs.insertAdjacentHTML('beforeend', fresh.map(logLine).join(''));
        lastLogId = fresh[fresh.length - 1].id;
        if (atBottom) logs.scrollTop = logs.scrollHeight;
      },
    });
  }

  async function loadPanels() {
    const [x, r] = await Promise.all([
      api(`${path}/xcoms`).catch((err) => ({ err })), api(`${path}/rendered`, { query: { mapIndex } }).catch((err) => ({ err })),
    ]);
    if (closed) return;
    root.querySelector('#panel-xcom').innerHTML = x.err ? errorBox(x.err) : xcomsHtml(x, mapIndex);
    root.querySelector('#panel-rendered').innerHTML = r.err ? errorBox(r.err) : `<p class="muted">Try ${esc(r.tryNumber ?? '—')}</p>${renderedHtml(r)}`;
  }

  async function reload() {
    let fresh;
    try { fresh = await api(path, { query: { mapIndex } }); } catch { return; }
    if (closed) return;
    const tryChanged = fresh.tryNumber !== ti.tryNumber;
    const stateChanged = fresh.state !== ti.state;
    const followLatest = tryShown === ti.tryNumber;
    ti = fresh;
    root.querySelector('#ti-facts').innerHTML = factsHtml(ti);
    root.querySelector('#ti-trigger').innerHTML = triggerHtml(ti.trigger);
    root.querySelector('#ti-tries').innerHTML = triesHtml(ti);
    if (tryChanged && followLatest) tryShown = ti.tryNumber;
    fillTries();
    if (tryChanged || stateChanged) {
      if (followLatest) void loadLogs();
      void loadPanels();
    }
  }

  fillTries();
  void loadLogs();
  void loadPanels();

  trySelect.addEventListener('change', () => { tryShown = Number(trySelect.value); void loadLogs(); });
  const tabs = [...root.querySelectorAll('[role=tab]')];
  const selectTab = (tab) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
      root.querySelector(`#${t.getAttribute('aria-controls')}`).hidden = !on;
    }
  };
  selectTab(tabs[0]);
  root.querySelector('.tabs').addEventListener('click', (e) => { const t = e.target.closest('[role=tab]'); if (t) selectTab(t); });
  root.querySelector('.tabs').addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
    const i = tabs.indexOf(document.activeElement);
    const next = tabs[(i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
    selectTab(next);
    next.focus();
  });

  root.addEventListener('click', async (e) => {
    const b = e.target.closest('[data-ti-action]');
    if (!b) return;
    const action = b.dataset.tiAction;
    const downstream = root.querySelector('#ti-downstream').checked;
    const title = { clear: 'Clear', success: 'Mark success', failed: 'Mark failed' }[action];
    const what = `${taskId}${mapIndex >= 0 ? ` [${mapIndex}]` : ''}${downstream ? ' and its downstream tasks' : ''}`;
    const message = action === 'clear' ? `Clear ${what}? It runs again.` : `Mark ${what} ${action}?`;
    if (!(await confirmStep(title, message, title))) return;
    try {
      const r = await api(`${path}/actions${mapIndex >= 0 ? `?mapIndex=${mapIndex}` : ''}`, { method: 'POST', body: { action, downstream } });
      toast(`${title}: ${r.changed} task instance(s) changed${r.killedTriggers ? `, ${r.killedTriggers} trigger(s) cancelled` : ''}`);
      void reload();
    } catch (err) {
      toast(err.message, 'bad');
    }
  });

  const stopGrid = stream(`/events?dagId=${enc(dagId)}`, {
    grid: (ev) => { if (ev.cells.some((c) => c.runId === runId && c.taskId === taskId)) void reload(); },
    hello: () => void reload(),
  });
  return () => { closed = true; stopGrid(); if (stopLogs) stopLogs(); };
}
