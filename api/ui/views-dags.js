// The DAG list: pause switches, schedules, next runs, the latest runs as dots, tags, and the
// files that failed to import; kept current by the `dags` live events.
import { api, dagPath, enc, esc, fmtTime, isAdmin, pauseSwitch, stateClass, stream, wirePauseSwitches } from './api.js';

function dots(dagId, runs) {
  // Oldest left, newest right, as in the grid.
  return [...runs].reverse().map((r) => `<a class="dot ${stateClass(r.state)}" href="${dagPath(dagId)}" title="${esc(`${r.runId}: ${r.state}`)}" data-state="${esc(r.state)}"><span class="sr">${esc(`${r.runId} ${r.state}`)}</span></a>`).join('');
}

function row(d) {
  return `<tr data-dag="${esc(d.dagId)}">
    <td class="narrow">${pauseSwitch(d)}</td>
    <th scope="row"><a class="dag-link" href="${dagPath(d.dagId)}">${esc(d.dagId)}</a>${d.description ? `<div class="muted small">${esc(d.description)}</div>` : ''}</th>
    <td>${d.schedule ? `<code>${esc(d.schedule)}</code>` : '<span class="muted">none</span>'}</td>
    <td class="nowrap">${d.nextRun ? fmtTime(d.nextRun) : '<span class="muted">—</span>'}</td>
    <td class="runs nowrap">${dots(d.dagId, d.latestRuns)}</td>
    <td>${d.tags.map((t) => `<button type="button" class="tag" data-tag="${esc(t)}">${esc(t)}</button>`).join(' ')}</td>
    <td class="nowrap">${isAdmin() ? `<a class="btn small" href="${dagPath(d.dagId, 'trigger')}" aria-label="${esc(`Trigger ${d.dagId}`)}">▶ Trigger</a>` : ''}
      <a class="btn small" href="${dagPath(d.dagId, 'graph')}" aria-label="${esc(`Graph of ${d.dagId}`)}">Graph</a></td>
  </tr>`;
}

export async function dagsView(root, _params, query, current) {
  document.title = 'DAGs · Updraft';
  const search = query.get('search') ?? '';
  const tag = query.get('tag') ?? '';
  const [list, errors] = await Promise.all([
    api('/dags', { query: { limit: 1000, search, tag, runs: 10 } }),
    api('/import-errors'),
  ]);
  if (!current()) return;
  const byId = new Map(list.dags.map((d) => [d.dagId, d]));
  root.innerHTML = `<section class="pad">
    <div class="row between wrap"><h1>DAGs</h1>
      <form class="row search" id="dag-search" role="search">
        <label class="sr" for="dag-q">Search DAGs</label>
        <input id="dag-q" name="search" type="search" placeholder="Search DAG ids" value="${esc(search)}">
        ${tag ? `<input type="hidden" name="tag" value="${esc(tag)}"><a class="tag" href="/dags" title="Clear the tag filter">${esc(tag)} ✕</a>` : ''}
        <button class="btn" type="submit">Search</button>
      </form></div>
    ${errors.importErrors.length ? `<details class="error" open><summary>${errors.importErrors.length} DAG file(s) failed to import</summary>
      ${errors.importErrors.map((e) => `<div class="import-error"><strong>${esc(e.fileloc)}</strong><pre>${esc(e.error)}</pre></div>`).join('')}</details>` : ''}
    <p class="muted">${list.total} DAG(s)</p>
    ${list.dags.length ? `<div class="scroll"><table class="list" id="dags"><thead><tr>
      <th scope="col"><span class="sr">Active</span></th><th scope="col">DAG</th><th scope="col">Schedule</th><th scope="col">Next run</th>
      <th scope="col">Recent runs</th><th scope="col">Tags</th><th scope="col"><span class="sr">Actions</span></th>
    </tr></thead><tbody>${list.dags.map(row).join('')}</tbody></table></div>` : '<p class="muted">No DAGs. Put DAG files in the DAGs folder.</p>'}
  </section>`;
  wirePauseSwitches(root);
  root.querySelector('#dag-search').addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams(new FormData(e.target));
    for (const [k, v] of [...q]) if (!v) q.delete(k);
    window.dispatchEvent(new CustomEvent('updraft:navigate', { detail: `/dags${[...q].length ? `?${q}` : ''}` }));
  });
  root.querySelector('#dags')?.addEventListener('click', (e) => {
    const t = e.target.closest('button[data-tag]');
    if (t) window.dispatchEvent(new CustomEvent('updraft:navigate', { detail: `/dags?tag=${enc(t.dataset.tag)}` }));
  });

  return stream('/events', {
    dags: ({ dags }) => {
      for (const change of dags) {
        const d = byId.get(change.dagId);
        const tr = root.querySelector(`tr[data-dag="${CSS.escape(change.dagId)}"]`);
        if (!d || !tr) continue;
        Object.assign(d, { isPaused: change.isPaused, latestRuns: change.latestRuns });
        tr.querySelector('.runs').innerHTML = dots(d.dagId, d.latestRuns);
        const box = tr.querySelector('.pause-toggle');
        if (box && !box.disabled) box.checked = !d.isPaused;
      }
    },
  });
}
