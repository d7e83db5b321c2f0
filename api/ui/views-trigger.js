// The trigger form, generated from the DAG's params (JSON Schema): one input per property,
// defaults filled, descriptions as help, JSON for anything richer; the server's 422 issues are
// shown beside their fields.
import { api, dagHeader, dagPath, enc, esc, errorBox, go, isAdmin, toast, wirePauseSwitches } from './api.js';

function kindOf(p) {
  if (!p || typeof p !== 'object') return 'json';
  if (Array.isArray(p.enum)) return 'enum';
  const type = Array.isArray(p.type) ? p.type.find((t) => t !== 'null') : p.type;
  if (type === 'string') return 'string';
  if (type === 'integer' || type === 'number') return type;
  if (type === 'boolean') return 'boolean';
  if (type === 'array' && p.items && (p.items.type === 'string' || p.items.enum)) return 'strings';
  return 'json';
}

function fieldHtml(name, p, required) {
  const kind = kindOf(p);
  const id = `f-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const def = p?.default;
  const help = p?.description ? `<p class="help" id="${id}-help">${esc(p.description)}</p>` : '';
  const described = `aria-describedby="${p?.description ? `${id}-help ` : ''}${id}-error"`;
  const label = `<label for="${id}">${esc(p?.title ?? name)}${required ? ' <span class="req" aria-hidden="true">*</span>' : ''}</label>`;
  let input;
  if (kind === 'boolean') {
    return `<div class="field" data-field="${esc(name)}"><label class="check"><input type="checkbox" id="${id}" name="${esc(name)}" data-kind="boolean" ${def ? 'checked' : ''} ${described}> ${esc(p?.title ?? name)}</label>${help}<div class="field-error" id="${id}-error"></div></div>`;
  }
  if (kind === 'enum') {
    input = `<select id="${id}" name="${esc(name)}" data-kind="enum" ${described}>${required ? '' : '<option value="">—</option>'}${p.enum.map((v) => `<option value="${esc(JSON.stringify(v))}"${v === def ? ' selected' : ''}>${esc(v)}</option>`).join('')}</select>`;
  } else if (kind === 'integer' || kind === 'number') {
    const hint = [p.minimum !== undefined ? `min ${p.minimum}` : '', p.maximum !== undefined ? `max ${p.maximum}` : ''].filter(Boolean).join(', ');
    input = `<input type="number" id="${id}" name="${esc(name)}" data-kind="${kind}" step="${kind === 'integer' ? 1 : 'any'}" value="${def ?? ''}" ${described}>${hint ? `<span class="muted small"> ${esc(hint)}</span>` : ''}`;
  } else if (kind === 'string') {
    input = `<input type="text" id="${id}" name="${esc(name)}" data-kind="string" value="${esc(def ?? '')}" ${described}>`;
  } else if (kind === 'strings') {
    input = `<textarea id="${id}" name="${esc(name)}" data-kind="strings" rows="3" ${described}>${esc((def ?? []).join('\n'))}</textarea><span class="muted small">one per line</span>`;
  } else {
    input = `<textarea id="${id}" name="${esc(name)}" data-kind="json" rows="4" class="mono" ${described}>${def === undefined ? '' : esc(JSON.stringify(def, null, 2))}</textarea><span class="muted small">JSON</span>`;
  }
  return `<div class="field" data-field="${esc(name)}">${label}${input}${help}<div class="field-error" id="${id}-error"></div></div>`;
}

/** The conf from the form; throws with the field name when a JSON field does not parse. */
function readConf(form, props) {
  const conf = {};
  for (const name of Object.keys(props)) {
    const el = form.querySelector(`[name="${CSS.escape(name)}"]`);
    const kind = el.dataset.kind;
    if (kind === 'boolean') { conf[name] = el.checked; continue; }
    const raw = el.value;
    if (raw.trim() === '') continue;
    if (kind === 'integer' || kind === 'number') conf[name] = Number(raw);
    else if (kind === 'enum') conf[name] = JSON.parse(raw);
    else if (kind === 'strings') conf[name] = raw.split('\n').map((s) => s.trim()).filter(Boolean);
    else if (kind === 'json') {
      try { conf[name] = JSON.parse(raw); } catch { throw Object.assign(new Error('not valid JSON'), { field: name }); }
    } else conf[name] = raw;
  }
  return conf;
}

export async function triggerView(root, [dagId], _query, current) {
  document.title = `Trigger ${dagId} · Updraft`;
  const dag = await api(`/dags/${enc(dagId)}`);
  if (!current()) return;
  const schema = dag.paramsSchema && typeof dag.paramsSchema === 'object' ? dag.paramsSchema : null;
  const props = schema?.properties ?? {};
  const required = new Set(schema?.required ?? []);
  const freeConf = !schema;
  root.innerHTML = `<section class="pad">${dagHeader(dag, 'trigger')}
    <h2>Trigger a run</h2>
    ${isAdmin() ? '' : '<p class="error">Triggering needs the admin role.</p>'}
    <form id="trigger-form" class="card form" novalidate>
      ${Object.entries(props).map(([name, p]) => fieldHtml(name, p, required.has(name))).join('')}
      ${freeConf ? `<div class="field" data-field="conf"><label for="f-conf">Configuration JSON</label>
        <textarea id="f-conf" name="conf" rows="5" class="mono" aria-describedby="f-conf-error">{}</textarea>
        <p class="help">This DAG declares no params; any JSON object is passed as the run's conf.</p><div class="field-error" id="f-conf-error"></div></div>` : ''}
      ${!freeConf && !Object.keys(props).length ? '<p class="muted">This DAG takes no params.</p>' : ''}
      <div class="field" data-field="runId"><label for="f-runid">Run id <span class="muted">(optional)</span></label>
        <input id="f-runid" name="__runId" placeholder="manual__…" aria-describedby="f-runid-error"><div class="field-error" id="f-runid-error"></div></div>
      <div id="form-error"></div>
      <div class="row"><button type="submit" class="btn primary">▶ Trigger</button><a class="btn" href="${dagPath(dagId)}">Cancel</a></div>
    </form></section>`;
  wirePauseSwitches(root);
  const form = root.querySelector('#trigger-form');
  const showIssue = (field, message) => {
    const box = form.querySelector(`[data-field="${CSS.escape(field)}"] .field-error`);
    if (!box) return false;
    box.textContent = message;
    box.closest('.field').classList.add('invalid');
    box.closest('.field').querySelector('input,select,textarea')?.setAttribute('aria-invalid', 'true');
    return true;
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
    for (const el of form.querySelectorAll('.invalid')) el.classList.remove('invalid');
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    form.querySelector('#form-error').innerHTML = '';
    let conf;
    try {
      conf = freeConf ? JSON.parse(form.querySelector('#f-conf').value || '{}') : readConf(form, props);
      if (freeConf && (typeof conf !== 'object' || conf === null || Array.isArray(conf))) throw Object.assign(new Error('must be a JSON object'), { field: 'conf' });
    } catch (err) {
      showIssue(err.field ?? 'conf', err.message);
      return;
    }
    const runId = form.querySelector('#f-runid').value.trim();
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      const run = await api(`/dags/${enc(dagId)}/runs`, { method: 'POST', body: { conf, ...(runId ? { runId } : {}) } });
      toast(`Run ${run.runId} queued`);
      go(`${dagPath(dagId)}?run=${enc(run.runId)}`);
    } catch (err) {
      button.disabled = false;
      const unplaced = [];
      for (const issue of Array.isArray(err.detail) ? err.detail : []) {
        const key = issue.path?.[0] === 'conf' ? issue.path[1] : issue.path?.[0] === 'runId' ? 'runId' : issue.path?.[0];
        if (key === undefined || !showIssue(String(key), issue.message)) unplaced.push(issue);
      }
      if (!Array.isArray(err.detail) || unplaced.length) form.querySelector('#form-error').innerHTML = errorBox(err);
      form.querySelector('[aria-invalid]')?.focus();
    }
  });
}
