/// <reference lib="dom" />
/**
 * The web UI in headless Chromium against a real `updraft standalone` (scheduler, worker,
 * triggerer, BigQuery emulator and UI in one process) on a fresh PostgreSQL database, with the
 * DAGs of tests/fixtures/ui/dags: log in, trigger a run from the params form (and see a 422
 * beside its field), watch a deferred cell turn green live, read a dbt model's rendered SQL,
 * clear a failed task, see connection passwords masked, and reach a grid cell by keyboard.
 * Screenshots of every view go to test-output/screenshots/ (UPDRAFT_UPDATE_SCREENSHOTS=1 also
 * copies the ones the README shows to docs/screenshots/).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createTestDatabase, pgAvailable, waitFor, type TestPg } from '../helpers/pg.ts';
import { freePort } from '../helpers/ports.ts';
import { Procs, ROOT, type Proc } from '../helpers/int-procs.ts';
import { ApiClient } from '../helpers/api-client.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH, chromiumAvailable } from '../helpers/browser.ts';

const haveChromium = chromiumAvailable;
if (!haveChromium && process.env.CI) {
  throw new Error(`the browser tests need Chromium at ${CHROMIUM_PATH} in CI (apt-get install chromium, or set UPDRAFT_CHROMIUM)`);
}
if (!haveChromium) process.stderr.write(`no Chromium at ${CHROMIUM_PATH}; the browser tests of the web UI are skipped\n`);

const DAGS = fileURLToPath(new URL('../fixtures/ui/dags', import.meta.url));
const SHOTS = path.join(ROOT, 'test-output', 'screenshots');
const DOC_SHOTS = path.join(ROOT, 'docs', 'screenshots');
const CONN_PASSWORD = 's3cret-pass';
const LONG = 90_000;

interface Run { runId: string; state: string; conf: Record<string, unknown> }

describe.skipIf(!haveChromium || !pgAvailable)('the web UI in a browser', () => {
  let pg: TestPg;
  let procs: Procs;
  let standalone: Proc;
  let base: string;
  let password: string;
  let dataDir: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let client: ApiClient;
  let dbtRun: string;
  let flakyRun: string;
  const pageErrors: string[] = [];

  const shot = async (name: string, p: Page = page) => {
    await p.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await p.screenshot({ path: path.join(SHOTS, `${name}.png`) });
  };
  const open = async (url: string, p: Page = page) => { await p.goto(`${base}${url}`); };
  const tiUrl = (dagId: string, runId: string, taskId: string) => `/dags/${encodeURIComponent(dagId)}/runs/${encodeURIComponent(runId)}/tasks/${encodeURIComponent(taskId)}`;
  const cell = (runId: string, taskId: string, state?: string) => `#grid [data-run="${runId}"][data-task="${taskId}"]${state ? `[data-state="${state}"]` : ''}`;

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    pg = await createTestDatabase('updraft_ui');
    dataDir = mkdtempSync(path.join(tmpdir(), 'updraft-ui-'));
    const [port, bqPort] = [await freePort(), await freePort()];
    procs = new Procs({
      DATABASE_URL: pg.url, UPDRAFT_DAGS_FOLDER: DAGS, UPDRAFT_DATA_DIR: dataDir, UPDRAFT_HEALTH_PORT: String(port),
      UPDRAFT_CONN_UI_BIGQUERY: `google-cloud-platform://?project=example&api_endpoint=${encodeURIComponent(`http://127.0.0.1:${bqPort}`)}&start_emulator=true`,
    });
    const migrated = await procs.run(['db', 'migrate']);
    expect(migrated.code, migrated.output).toBe(0);
    const added = await procs.run(['connections', 'add', 'warehouse', '--uri', `postgres://report:${CONN_PASSWORD}@db.example.com:5432/analytics`]);
    expect(added.code, added.output).toBe(0);
    standalone = procs.start('standalone', ['standalone']);
    const m = await procs.waitForOutput(standalone, /web UI: (http:\/\/\S+?)\/\s+login: admin \/ (\S+)/, LONG);
    [base, password] = [m[1], m[2]];
    await procs.waitForOutput(standalone, /scheduler, worker and triggerer running/, LONG);

    // Runs the browser will look at later: they proceed while the first tests run.
    client = new ApiClient(base);
    expect((await client.login('admin', password)).status).toBe(200);
    const trigger = async (dagId: string, conf: Record<string, unknown>) => {
      const res = await client.send<Run>('POST', `/api/v1/dags/${dagId}/runs`, { conf });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body.runId;
    };
    dbtRun = await trigger('ui_dbt_shop', {});
    flakyRun = await trigger('ui_flaky', {});
    await trigger('ui_flaky', {});
    await trigger('ui_wait', { seconds: 1 });

    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS,
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(30_000);
    page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    if (procs) {
      if (pageErrors.length || process.env.UPDRAFT_UI_TEST_VERBOSE) process.stderr.write(`page errors: ${pageErrors.join('\n')}\n${standalone?.output() ?? ''}\n`);
      await procs.stopAll();
    }
    await pg?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (process.env.UPDRAFT_UPDATE_SCREENSHOTS) {
      mkdirSync(DOC_SHOTS, { recursive: true });
      for (const name of ['dags', 'grid', 'graph', 'ti-rendered-sql', 'trigger-form', 'triggers', 'grid-phone']) {
        copyFileSync(path.join(SHOTS, `${name}.png`), path.join(DOC_SHOTS, `${name}.png`));
      }
    }
  }, 60_000);

  it('refuses a wrong password and logs in with the right one', async () => {
    await open('/');
    await page.waitForSelector('#login-form');
    await page.fill('#login-user', 'admin');
    await page.fill('#login-password', 'not-the-password');
    await page.click('#login-form button[type=submit]');
    await expect.poll(() => page.textContent('#login-error')).toContain('wrong username or password');
    await shot('login');
    await page.fill('#login-password', password);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#dags tr[data-dag="ui_wait"]');
    expect(await page.textContent('#who')).toContain('admin');
    await page.waitForSelector('#dags tr[data-dag="ui_dbt_shop"] .dot');
    await shot('dags');
  });

  it('triggers a run from the params form, showing a 422 beside its field, and watches the deferred cell turn green live', async () => {
    await open('/dags/ui_wait/trigger');
    await page.waitForSelector('#trigger-form');
    expect(await page.inputValue('#f-seconds')).toBe('2');
    expect(await page.textContent('[data-field="seconds"] .help')).toContain('How long the sensor waits');
    await shot('trigger-form');
    await page.fill('#f-seconds', '0');
    await page.click('#trigger-form button[type=submit]');
    const issue = await page.waitForSelector('[data-field="seconds"] .field-error:not(:empty)');
    expect(await issue.textContent()).toMatch(/>=\s*1/);
    await shot('trigger-form-422');
    await page.fill('#f-seconds', '10');
    await page.fill('#f-label', 'from-the-form');
    await page.click('#trigger-form button[type=submit]');
    await page.waitForURL(/\/dags\/ui_wait\/grid\?run=/);
    const runId = new URL(page.url()).searchParams.get('run')!;
    const run = (await client.get<Run>(`/api/v1/dags/ui_wait/runs/${encodeURIComponent(runId)}`)).body;
    expect(run.conf).toMatchObject({ seconds: 10, label: 'from-the-form' });

    await page.evaluate(() => { (window as unknown as { stayed: boolean }).stayed = true; });
    const waitCell = await page.waitForSelector(cell(runId, 'wait', 'deferred'), { timeout: LONG });
    await page.click(`[data-runhead="${runId}"]`);
    await page.waitForSelector('#details [data-run-action="clear"]');
    await shot('grid');

    // While it waits: the TI with its trigger, and the triggers page, in a second tab.
    const tab = await context.newPage();
    await open(tiUrl('ui_wait', runId, 'wait'), tab);
    await tab.waitForSelector('#trigger');
    expect(await tab.textContent('#trigger')).toContain('DateTimeTrigger');
    await shot('ti-deferred-trigger', tab);
    await open('/triggers', tab);
    await tab.waitForSelector(`a[href*="${encodeURIComponent(runId)}"]`);
    expect(await tab.textContent('main')).toMatch(/healthy/);
    await shot('triggers', tab);
    await tab.close();

    await page.waitForFunction((el) => (el as HTMLElement).dataset.state === 'success', waitCell, { timeout: LONG });
    await page.waitForSelector(cell(runId, 'report', 'success'), { timeout: LONG });
    expect(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed)).toBe(true);

    await page.click(cell(runId, 'report'));
    await page.waitForURL(/\/tasks\/report/);
    await page.waitForFunction(() => document.querySelector('#logs')?.textContent?.includes('the wait is over'));
    await shot('ti-logs');
  });

  it('shows the grid and the graph of the dbt DAG, and a model\'s rendered SQL', async () => {
    await open('/dags/ui_dbt_shop/grid');
    await page.waitForSelector(cell(dbtRun, 'shop.marts.customer_orders', 'success'), { timeout: LONG });
    expect(await page.$$eval('#grid [data-run][data-task]', (els) => els.length)).toBe(19);
    expect(await page.evaluate(() => performance.getEntriesByName('grid-painted').length)).toBe(1);
    await page.click(`[data-runhead="${dbtRun}"]`);
    await page.waitForSelector('#details [data-run-action="clear"]');
    await shot('grid-dbt');

    await page.click('a.tab[href$="/graph"]');
    await page.waitForSelector('svg.graph [data-node="shop.marts.customer_orders"][data-state="success"]');
    await shot('graph');
    await page.click('#g-collapse');
    await page.waitForSelector('svg.graph [data-expand="shop"]');
    expect(await page.$$eval('svg.graph .node', (els) => els.length)).toBe(2);

    await open(tiUrl('ui_dbt_shop', dbtRun, 'shop.marts.customer_orders'));
    await page.click('#tab-rendered');
    const sql = await page.waitForSelector('#panel-rendered pre.sql');
    const text = (await sql.textContent()) ?? '';
    expect(text.toLowerCase()).toContain('select');
    expect(text).toContain('`shop_marts`.`customer_orders`');
    expect(text).toMatch(/\nfrom /);
    await shot('ti-rendered-sql');
  });

  it('clears a failed task, which then runs again', async () => {
    await open('/dags/ui_flaky/grid');
    await page.waitForSelector(cell(flakyRun, 'flaky', 'failed'), { timeout: LONG });
    await page.click(cell(flakyRun, 'flaky'));
    await page.waitForSelector('[data-ti-action="clear"]');
    await page.check('#ti-downstream');
    await page.click('[data-ti-action="clear"]');
    await page.click('#confirm-ok');
    await page.waitForSelector('.toast:not([hidden])');
    await page.click(`.crumbs a[href="/dags/ui_flaky/grid"]`);
    await page.waitForSelector(`${cell(flakyRun, 'flaky')}:not([data-state="failed"])`, { timeout: LONG });
    await page.waitForSelector(cell(flakyRun, 'after', 'success'), { timeout: LONG });
    expect(await page.getAttribute(cell(flakyRun, 'flaky'), 'data-state')).toBe('success');
  });

  it('masks connection passwords and lists datasets and pools', async () => {
    await open('/connections');
    await page.waitForSelector('td.pw');
    const main = (await page.textContent('main')) ?? '';
    expect(main).toContain('warehouse');
    expect(main).toContain('***');
    expect(main).not.toContain(CONN_PASSWORD);
    expect(await page.content()).not.toContain(CONN_PASSWORD);
    await shot('connections');

    await open('/datasets');
    const first = await page.waitForSelector('[data-uri*="customer_orders"]');
    await first.click();
    await page.waitForSelector('#dataset-events table');
    await shot('datasets');

    await open('/pools');
    await page.waitForSelector('text=default_pool');
    await shot('pools');
  });

  it('reaches a grid cell from the keyboard, with a visible focus outline', async () => {
    await open('/dags/ui_dbt_shop/grid');
    await page.waitForSelector('#grid button.c');
    let focused = false;
    for (let i = 0; i < 80 && !focused; i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => document.activeElement?.matches('#grid button.c') ?? false);
    }
    expect(focused).toBe(true);
    const style = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      const s = getComputedStyle(el);
      return { outlineStyle: s.outlineStyle, outlineWidth: parseFloat(s.outlineWidth), focusVisible: el.matches(':focus-visible'), label: el.getAttribute('aria-label') };
    });
    expect(style.focusVisible).toBe(true);
    expect(style.outlineStyle).not.toBe('none');
    expect(style.outlineWidth).toBeGreaterThanOrEqual(2);
    expect(style.label).toContain('land');
  });

  it('fits a phone: the navigation collapses and the grid scrolls inside its box', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, storageState: await context.storageState(), isMobile: true, hasTouch: true });
    const p = await phone.newPage();
    await open('/dags/ui_dbt_shop/grid', p);
    await p.waitForSelector(cell(dbtRun, 'land', 'success'));
    expect(await p.isVisible('#menu')).toBe(true);
    expect(await p.isVisible('#nav')).toBe(false);
    expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(391);
    await shot('grid-phone', p);
    await p.click('#menu');
    expect(await p.isVisible('#nav a[href="/triggers"]')).toBe(true);
    await phone.close();
    expect(pageErrors).toEqual([]);
  });

  it('logs out', async () => {
    await open('/dags');
    await page.click('#logout');
    await page.waitForSelector('#login-form');
    await waitFor(async () => (await fetch(`${base}/api/v1/auth/me`)).status === 401, 'the API to refuse an anonymous caller');
  });
});
