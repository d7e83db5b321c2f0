// The UI's entry: who is logged in, the login form, the navigation, and the client-side router
// (one document; each path renders a view into <main>, and a view returns its cleanup).
import { api, esc, errorBox, isAdmin, session } from './api.js';
import { dagsView } from './views-dags.js';
import { gridView } from './views-grid.js';
import { graphView } from './graph.js';
import { tiView } from './views-ti.js';
import { triggerView } from './views-trigger.js';
import { connectionsView, datasetsView, poolsView, triggersView, variablesView } from './views-system.js';

const main = document.getElementById('main');
let cleanup = null;
let renderId = 0;

const ROUTES = [
  [/^\/(?:dags\/?)?$/, 'dags', dagsView],
  [/^\/dags\/([^/]+)\/?$/, 'dags', (root, m) => redirect(`/dags/${m[1]}/grid`)],
  [/^\/dags\/([^/]+)\/grid$/, 'dags', gridView],
  [/^\/dags\/([^/]+)\/graph$/, 'dags', graphView],
  [/^\/dags\/([^/]+)\/trigger$/, 'dags', triggerView],
  [/^\/dags\/([^/]+)\/runs\/([^/]+)\/tasks\/([^/]+)$/, 'dags', tiView],
  [/^\/datasets$/, 'datasets', datasetsView],
  [/^\/triggers$/, 'triggers', triggersView],
  [/^\/pools$/, 'pools', poolsView],
  [/^\/connections$/, 'connections', connectionsView],
  [/^\/variables$/, 'variables', variablesView],
];

function redirect(to) {
  history.replaceState(null, '', to);
  void route();
}

export function navigate(to, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  void route();
}

async function route() {
  const id = ++renderId;
  if (cleanup) { try { cleanup(); } catch { /* a view's cleanup must not stop the next view */ } cleanup = null; }
  if (!session.me) return showLogin();
  const path = location.pathname.replace(/\/+$/, '') || '/';
  const found = ROUTES.map(([re, nav, view]) => [path.match(re), nav, view]).find(([m]) => m);
  document.getElementById('nav').classList.remove('open');
  document.getElementById('menu').setAttribute('aria-expanded', 'false');
  for (const a of document.querySelectorAll('[data-nav]')) a.toggleAttribute('aria-current', found?.[1] === a.dataset.nav);
  if (!found) {
    main.innerHTML = `<section class="pad"><h1>Not found</h1><p>No page at ${esc(path)}. <a href="/dags">Back to the DAGs</a>.</p></section>`;
    return;
  }
  const [m, , view] = found;
  const params = m.slice(1).map((s) => decodeURIComponent(s));
  try {
    const done = await view(main, params, new URLSearchParams(location.search), () => id === renderId);
    if (id === renderId) cleanup = typeof done === 'function' ? done : null;
    else if (typeof done === 'function') done();
  } catch (err) {
    if (id !== renderId) return;
    if (err.status === 401) return;
    main.innerHTML = `<section class="pad">${errorBox(err)}</section>`;
  }
}

function showShell() {
  const top = document.getElementById('top');
  top.hidden = !session.me;
  if (!session.me) return;
  document.getElementById('who').innerHTML = `<span class="user">${esc(session.me.username)}</span> <span class="role">${esc(session.me.role)}</span>`;
  for (const a of document.querySelectorAll('[data-admin]')) a.hidden = !isAdmin();
  document.getElementById('logout').hidden = session.me.auth === 'none';
}

function showLogin(message) {
  session.me = null;
  showShell();
  document.title = 'Log in · Updraft';
  main.innerHTML = `<section class="login">
    <h1><img src="/static/logo.svg" alt="" width="28" height="28"> Updraft</h1>
    <form id="login-form" class="card">
      <h2>Log in</h2>
      <label for="login-user">Username</label>
      <input id="login-user" name="username" autocomplete="username" required>
      <label for="login-password">Password</label>
      <input id="login-password" name="password" type="password" autocomplete="current-password" required>
      <div id="login-error">${message ? errorBox({ message }) : ''}</div>
      <button class="btn primary" type="submit">Log in</button>
    </form></section>`;
  const form = document.getElementById('login-form');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const fd = new FormData(form);
    const btn = form.querySelector('button');
    btn.disabled = true;
    try {
      session.me = await api('/auth/login', { method: 'POST', body: { username: fd.get('username'), password: fd.get('password') } });
      showShell();
      void route();
    } catch (err) {
      document.getElementById('login-error').innerHTML = errorBox(err);
      btn.disabled = false;
      document.getElementById('login-password').select();
    }
  });
  document.getElementById('login-user').focus();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey || a.target) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/static/')) return;
  if (url.hash && url.pathname === location.pathname && url.search === location.search) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener('popstate', () => void route());
window.addEventListener('updraft:logged-out', () => { if (session.me) showLogin('Your session ended; log in again.'); });
window.addEventListener('updraft:navigate', (e) => navigate(e.detail));

document.getElementById('menu').addEventListener('click', (e) => {
  const nav = document.getElementById('nav');
  const open = nav.classList.toggle('open');
  e.currentTarget.setAttribute('aria-expanded', String(open));
});
document.getElementById('logout').addEventListener('click', async () => {
  try { await api('/auth/logout', { method: 'POST' }); } catch { /* logged out either way */ }
  if (cleanup) { cleanup(); cleanup = null; }
  showLogin();
});

async function start() {
  try {
    session.me = await api('/auth/me');
  } catch (err) {
    if (err.status !== 401) {
      main.innerHTML = `<section class="pad">${errorBox(err)}</section>`;
      return;
    }
  }
  showShell();
  await route();
}
void start();
