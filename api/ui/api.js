// The UI's shared pieces: the REST client (session cookie + CSRF header), HTML escaping,
// formatting of times and states, live-update streams, and small DOM helpers.

export const session = { me: null };

export class HttpError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `request failed with HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code ?? 'http';
    this.detail = body?.error?.detail;
  }
}

/** Calls /api/v1; changes carry the CSRF token; errors become HttpError with the server's message. */
export async function api(path, { method = 'GET', body, query } = {}) {
  let url = `/api/v1${path}`;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    if ([...q].length) url += `?${q}`;
  }
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && session.me?.csrfToken) headers['x-csrf-token'] = session.me.csrfToken;
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const err = new HttpError(res.status, data);
    if (res.status === 401 && !path.startsWith('/auth/')) window.dispatchEvent(new CustomEvent('updraft:logged-out'));
    throw err;
  }
  return data;
}

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Every string that goes into HTML passes through here. */
export function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ESC[c]);
}

export const enc = encodeURIComponent;
export const isAdmin = () => session.me?.role === 'admin';

export const dagPath = (dagId, view = 'grid') => `/dags/${enc(dagId)}/${view}`;
export function tiPath(dagId, runId, taskId, mapIndex = -1) {
  return `/dags/${enc(dagId)}/runs/${enc(runId)}/tasks/${enc(taskId)}${mapIndex >= 0 ? `?mapIndex=${mapIndex}` : ''}`;
}

/** Airflow's state colours; deferred is its own (mediumpurple). */
export const STATES = [
  ['success', 'success'], ['running', 'running'], ['deferred', 'deferred'], ['failed', 'failed'],
  ['upstream_failed', 'upstream failed'], ['up_for_retry', 'up for retry'], ['up_for_reschedule', 'up for reschedule'],
  ['queued', 'queued'], ['scheduled', 'scheduled'], ['skipped', 'skipped'], ['removed', 'removed'], ['restarting', 'restarting'], ['none', 'no status'],
];
export const stateClass = (s) => `s-${String(s ?? 'none').replace(/[^a-z_]/g, '')}`;
export const ACTIVE = new Set(['running', 'deferred', 'queued', 'scheduled', 'up_for_retry', 'up_for_reschedule', 'restarting']);

export function badge(state) {
  return `<span class="badge ${stateClass(state)}">${esc(String(state ?? 'none').replace(/_/g, ' '))}</span>`;
}

export function legend() {
  return `<ul class="legend" aria-label="State colours">${STATES.map(([s, label]) => `<li><span class="sw ${stateClass(s)}"></span>${esc(label)}</li>`).join('')}</ul>`;
}

const pad = (n) => String(n).padStart(2, '0');
/** A UTC time as "2026-01-05 10:00:00" (Airflow shows UTC by default). */
export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return esc(iso);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '—';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  return `${fmtDuration(seconds)} ago`;
}

export function between(start, end) {
  if (!start) return null;
  return ((end ? new Date(end) : new Date()).getTime() - new Date(start).getTime()) / 1000;
}

/** Subscribe to Server-Sent Events; returns the close function. */
export function stream(path, handlers) {
  const es = new EventSource(`/api/v1${path}`, { withCredentials: true });
  for (const [event, fn] of Object.entries(handlers)) {
    es.addEventListener(event, (e) => {
      try { fn(JSON.parse(e.data)); } catch (err) { console.error(`live update ${event}:`, err); }
    });
  }
  return () => es.close();
}

export function errorBox(err) {
  return `<div class="error" role="alert">${esc(err?.message ?? String(err))}</div>`;
}

let toastTimer;
export function toast(message, kind = 'ok') {
  const el = document.getElementById('toast');
  el.className = `toast ${kind}`;
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

/** A modal confirm step; resolves true when confirmed. */
export function confirmStep(title, message, confirmLabel = 'Confirm') {
  const dlg = document.getElementById('confirm');
  dlg.innerHTML = `<form method="dialog"><h2>${esc(title)}</h2><p>${esc(message)}</p>
    <div class="row end"><button value="cancel" class="btn">Cancel</button><button value="ok" class="btn primary" id="confirm-ok">${esc(confirmLabel)}</button></div></form>`;
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.returnValue = '';
    dlg.showModal();
    dlg.querySelector('#confirm-ok').focus();
  });
}

export function pretty(value) {
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}

/** The table markup shared by list pages: a horizontally scrolling wrapper. */
export function table(head, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return `<p class="muted">${esc(empty)}</p>`;
  return `<div class="scroll"><table class="list"><thead><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
}

/** Client-side navigation from a view (the router lives in app.js). */
export function go(path) {
  window.dispatchEvent(new CustomEvent('updraft:navigate', { detail: path }));
}

/** The header shared by a DAG's pages: id, tabs, pause switch (admins), tags. */
export function dagHeader(dag, active) {
  const tab = (view, label) => `<a href="${dagPath(dag.dagId, view)}" class="tab"${view === active ? ' aria-current="page"' : ''}>${esc(label)}</a>`;
  return `<div class="dag-head">
    <h1><span class="muted">DAG</span> ${esc(dag.dagId)}</h1>
    ${pauseSwitch(dag)}
    <span class="meta">${dag.schedule ? `schedule <code>${esc(dag.schedule)}</code>` : 'manual runs only'}${dag.nextRun ? ` · next run ${fmtTime(dag.nextRun)}` : ''}</span>
    ${(dag.tags ?? []).map((t) => `<span class="tag">${esc(t)}</span>`).join('')}
  </div>
  ${dag.description ? `<p class="muted">${esc(dag.description)}</p>` : ''}
  ${dag.importError ? `<div class="error" role="alert"><strong>Import error:</strong> <pre>${esc(dag.importError)}</pre></div>` : ''}
  <nav class="tabs" aria-label="DAG views">${tab('grid', 'Grid')}${tab('graph', 'Graph')}${isAdmin() ? tab('trigger', '▶ Trigger') : ''}</nav>`;
}

export function pauseSwitch(dag) {
  const label = `${dag.isPaused ? 'Unpause' : 'Pause'} ${dag.dagId}`;
  if (!isAdmin()) return `<span class="paused-text">${dag.isPaused ? 'paused' : 'active'}</span>`;
  return `<label class="switch" title="${esc(label)}"><input type="checkbox" class="pause-toggle" data-dag="${esc(dag.dagId)}" ${dag.isPaused ? '' : 'checked'} aria-label="${esc(`${dag.dagId} active`)}"><span aria-hidden="true"></span></label>`;
}

/** Wires every pause switch inside `root` (PATCH /dags/{id}). */
export function wirePauseSwitches(root) {
  root.addEventListener('change', async (e) => {
    const box = e.target.closest('.pause-toggle');
    if (!box) return;
    const dagId = box.dataset.dag;
    box.disabled = true;
    try {
      const r = await api(`/dags/${enc(dagId)}`, { method: 'PATCH', body: { isPaused: !box.checked } });
      toast(`${dagId} ${r.isPaused ? 'paused' : 'unpaused'}`);
    } catch (err) {
      box.checked = !box.checked;
      toast(err.message, 'bad');
    } finally {
      box.disabled = false;
    }
  });
}

/** State colours for drawing (kept in step with style.css). */
export const COLOR = {
  success: '#008000', running: '#32cd32', deferred: '#9370db', failed: '#dc2626', upstream_failed: '#ffa500', up_for_retry: '#ffd700',
  up_for_reschedule: '#40e0d0', queued: '#808080', scheduled: '#d2b48c', skipped: '#ff69b4', removed: '#d3d3d3', restarting: '#ee82ee', none: '#ffffff',
};

const SYMBOL = { success: '✓', failed: '✗', running: '▶', deferred: '⏸', upstream_failed: '⚠', skipped: '↷', queued: '…', scheduled: '◷' };
/** "3✓ 1✗" for a mapped task's counts. */
export function countsText(counts) {
  return Object.entries(counts ?? {}).map(([s, n]) => `${n}${SYMBOL[s] ?? ` ${s.replace(/_/g, ' ')}`}`).join(' ');
}

/** Which colour a cell value shows: a state, or 'mixed' for a mapped task in several states. */
export function cellState(value) {
  if (value === null || value === undefined) return 'none';
  if (typeof value === 'string') return value;
  const keys = Object.keys(value);
  return keys.length === 0 ? 'none' : keys.length === 1 ? keys[0] : 'mixed';
}

/** A horizontal stacked bar of a mapped task's state counts, as a CSS background. */
export function countsGradient(counts) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0) || 1;
  let at = 0;
  const stops = [];
  for (const [s, n] of Object.entries(counts)) {
    const from = (at / total) * 100;
    at += n;
    stops.push(`${COLOR[s] ?? '#999'} ${from.toFixed(1)}% ${((at / total) * 100).toFixed(1)}%`);
  }
  return `linear-gradient(to right, ${stops.join(', ')})`;
}

const GROUP_ORDER = ['failed', 'upstream_failed', 'up_for_retry', 'up_for_reschedule', 'running', 'deferred', 'restarting', 'queued', 'scheduled', 'none', 'success', 'skipped', 'removed'];
/** A task group's state in a run, from its tasks' cells (the most pressing state wins). */
export function groupState(values) {
  const seen = new Set();
  for (const v of values) {
    if (v === null || v === undefined) seen.add('none');
    else if (typeof v === 'string') seen.add(v);
    else for (const k of Object.keys(v)) seen.add(k);
  }
  if (seen.size === 0) return 'none';
  return GROUP_ORDER.find((s) => seen.has(s)) ?? [...seen][0];
}

/** Task ids in topological order (stable: ties keep the given order). */
export function topoOrder(taskIds, upstreamOf) {
  const index = new Map(taskIds.map((id, i) => [id, i]));
  const indeg = new Map(taskIds.map((id) => [id, 0]));
  const down = new Map(taskIds.map((id) => [id, []]));
  for (const id of taskIds) {
    for (const u of upstreamOf(id) ?? []) {
      if (!index.has(u)) continue;
      indeg.set(id, indeg.get(id) + 1);
      down.get(u).push(id);
    }
  }
  const ready = taskIds.filter((id) => indeg.get(id) === 0);
  const out = [];
  while (ready.length) {
    ready.sort((a, b) => index.get(a) - index.get(b));
    const id = ready.shift();
    out.push(id);
    for (const d of down.get(id)) {
      indeg.set(d, indeg.get(d) - 1);
      if (indeg.get(d) === 0) ready.push(d);
    }
  }
  // A cycle cannot be stored, but never lose a task.
  for (const id of taskIds) if (!out.includes(id)) out.push(id);
  return out;
}
