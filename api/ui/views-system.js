// Everything around the DAGs: triggerers and triggers (with the TIs waiting), datasets and
// their events, pools, and for admins connections and variables (secrets masked by the server).
import { api, dagPath, esc, errorBox, fmtAge, fmtTime, pretty, table, tiPath } from './api.js';

const page = (title, body) => `<section class="pad"><h1>${esc(title)}</h1>${body}</section>`;
const refreshEvery = (ms, fn) => { const t = setInterval(fn, ms); return () => clearInterval(t); };

export async function triggersView(root, _p, _q, current) {
  document.title = 'Triggers · Updraft';
  const draw = async () => {
    const [jobs, triggers] = await Promise.all([api('/jobs', { query: { jobType: 'triggerer' } }), api('/triggers', { query: { limit: 500 } })]);
    if (!current()) return;
    const jobRows = jobs.jobs.map((j) => `<tr><td class="mono">${esc(j.id)}</td><td>${esc(j.hostname)}:${j.pid}</td>
      <td><span class="badge ${j.healthy ? 's-success' : 's-failed'}">${j.healthy ? 'healthy' : 'unhealthy'}</span></td><td>${esc(j.state)}</td>
      <td class="nowrap">${fmtAge(j.ageSeconds)}</td><td>${j.capacity ?? '—'}</td><td>${j.running ?? '—'}</td><td>${j.triggers}</td>
      <td>${j.loopLagMs === null ? '—' : `${j.loopLagMs.toFixed(1)} ms`}</td><td class="nowrap">${fmtTime(j.startDate)}</td></tr>`);
    const trigRows = triggers.triggers.map((t) => `<tr><td>${t.id}</td><td class="mono">${esc(t.name)}</td><td class="mono">${esc(t.triggererId ?? 'unassigned')}</td>
      <td class="nowrap">${fmtTime(t.createdDate)}</td>
      <td>${t.waiting.map((w) => `<a href="${tiPath(w.dagId, w.runId, w.taskId, w.mapIndex)}">${esc(`${w.dagId} › ${w.taskId}${w.mapIndex >= 0 ? ` [${w.mapIndex}]` : ''}`)}</a> <span class="muted small">${esc(w.runId)}</span>`).join('<br>') || '<span class="muted">none</span>'}</td></tr>`);
    root.innerHTML = page('Triggers', `<h2>Triggerers</h2>
      ${table(['Id', 'Host', 'Health', 'State', 'Last heartbeat', 'Capacity', 'Running', 'Triggers', 'Loop lag', 'Started'], jobRows, 'No triggerer has started.')}
      <h2>Triggers <span class="muted">(${triggers.total})</span></h2>
      ${table(['Id', 'Trigger', 'Triggerer', 'Created', 'Waiting task instances'], trigRows, 'No trigger is waiting.')}`);
  };
  await draw();
  return refreshEvery(5000, () => void draw().catch(() => undefined));
}

export async function datasetsView(root, _p, query, current) {
  document.title = 'Datasets · Updraft';
  const { datasets } = await api('/datasets');
  if (!current()) return;
  const rows = datasets.map((d) => `<tr><td><button type="button" class="linkish mono" data-uri="${esc(d.uri)}">${esc(d.uri)}</button></td>
    <td>${d.producingTasks.map((t) => `<span class="mono">${esc(t)}</span>`).join('<br>') || '—'}</td>
    <td>${d.consumingDags.map((id) => `<a href="${dagPath(id)}">${esc(id)}</a>`).join('<br>') || '—'}</td>
    <td>${d.events}</td><td class="nowrap">${d.lastEvent ? `${fmtTime(d.lastEvent.timestamp)}${d.lastEvent.source ? `<div class="muted small">${esc(d.lastEvent.source)}</div>` : ''}` : '—'}</td></tr>`);
  root.innerHTML = page('Datasets', `${table(['URI', 'Producing tasks', 'Consuming DAGs', 'Events', 'Latest event'], rows, 'No datasets yet: tasks with outlets create them.')}
    <section id="dataset-events" aria-live="polite"></section>`);
  const box = root.querySelector('#dataset-events');
  const show = async (uri) => {
    box.innerHTML = `<h2>Events of <span class="mono">${esc(uri)}</span></h2><p class="muted">Loading…</p>`;
    try {
      const { events } = await api('/datasets/events', { query: { uri, limit: 50 } });
      box.innerHTML = `<h2>Events of <span class="mono">${esc(uri)}</span></h2>${table(['Time', 'Source', 'Extra', 'Triggered runs'], events.map((e) => `<tr>
        <td class="nowrap">${fmtTime(e.timestamp)}</td>
        <td>${e.sourceDagId ? `<a href="${tiPath(e.sourceDagId, e.sourceRunId, e.sourceTaskId, e.sourceMapIndex ?? -1)}">${esc(`${e.sourceDagId} › ${e.sourceTaskId}`)}</a><div class="muted small">${esc(e.sourceRunId)}</div>` : '<span class="muted">external</span>'}</td>
        <td><pre class="code small">${esc(pretty(e.extra ?? {}))}</pre></td><td>${e.triggeredRuns.map((r) => `<span class="mono">${esc(r)}</span>`).join('<br>') || '—'}</td></tr>`), 'No events yet.')}`;
    } catch (err) {
      box.innerHTML = errorBox(err);
    }
  };
  root.addEventListener('click', (e) => {
    const b = e.target.closest('[data-uri]');
    if (!b) return;
    history.replaceState(null, '', `/datasets?uri=${encodeURIComponent(b.dataset.uri)}`);
    void show(b.dataset.uri);
  });
  if (query.get('uri')) void show(query.get('uri'));
}

export async function poolsView(root, _p, _q, current) {
  document.title = 'Pools · Updraft';
  const { pools } = await api('/pools');
  if (!current()) return;
  root.innerHTML = page('Pools', table(['Pool', 'Slots', 'Used', 'Open', 'Counts deferred', 'Description'], pools.map((p) => `<tr>
    <td class="mono">${esc(p.name)}</td><td>${p.slots < 0 ? 'unlimited' : p.slots}</td><td>${p.used}</td><td>${p.open ?? '∞'}</td>
    <td>${p.includeDeferred ? 'yes' : 'no'}</td><td>${esc(p.description ?? '')}</td></tr>`), 'No pools.'));
}

export async function connectionsView(root, _p, _q, current) {
  document.title = 'Connections · Updraft';
  const { connections } = await api('/connections');
  if (!current()) return;
  root.innerHTML = page('Connections', `<p class="muted">Stored in the metadata database; passwords and secret extras are masked.</p>
    ${table(['Conn id', 'Type', 'Host', 'Port', 'Login', 'Schema', 'Password', 'Extra', 'Description'], connections.map((c) => `<tr>
    <td class="mono">${esc(c.connId)}</td><td>${esc(c.connType)}</td><td>${esc(c.host ?? '')}</td><td>${c.port ?? ''}</td><td>${esc(c.login ?? '')}</td>
    <td>${esc(c.schema ?? '')}</td><td class="mono pw">${esc(c.password ?? '')}</td>
    <td>${c.extra && Object.keys(c.extra).length ? `<pre class="code small">${esc(pretty(c.extra))}</pre>` : ''}</td><td>${esc(c.description ?? '')}</td></tr>`), 'No connections in the database (connections from the environment are not listed).')}`);
}

export async function variablesView(root, _p, _q, current) {
  document.title = 'Variables · Updraft';
  const { variables } = await api('/variables');
  if (!current()) return;
  root.innerHTML = page('Variables', table(['Key', 'Value', 'Description'], variables.map((v) => `<tr>
    <td class="mono">${esc(v.key)}</td><td><pre class="code small">${esc(v.value)}</pre></td><td>${esc(v.description ?? '')}</td></tr>`), 'No variables.'));
}
