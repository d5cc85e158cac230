// Drives Cairn's operator dashboard (GET /admin, src/http/dashboard.html) in headless Chromium.
//
// Environment:
//   CAIRN_URL                 base URL of a running Cairn, e.g. http://127.0.0.1:8080 (required)
//   CAIRN_OPERATOR_TOKEN      a bearer token with `operator: true` (required)
//   CAIRN_EXPECT_TENANT       a tenant that must have a row in the tenants table (required)
//   CAIRN_EXPECT_OBJECTS      that tenant's total objects (all envs) as its row must show (optional)
//   CAIRN_EXPECT_DOWNLOAD_URLS  that tenant's download URLs handed out, as its row must show (optional)
//   CAIRN_EXPECT_SERVED_BYTES   that tenant's bytes served (egress), as its row must show (optional)
//   CAIRN_EXPECT_RECLAIMED    the bytes reclaimed the latest lifecycle run must show (optional)
//   CAIRN_NON_OPERATOR_TOKEN  a valid token without `operator: true`: checks the refusal (optional)
//   CAIRN_SCREENSHOT          the full-page PNG to write (default: $TMPDIR/cairn-dashboard.png);
//                             on failure `<name>-failed.png` next to it
//   CAIRN_TEST_CHROMIUM       the Chromium binary (default /usr/bin/chromium, Debian's package)
//
// Prints one `ok - …` line per check passed; on any failure, uncaught page error, console error,
// request outside CAIRN_URL's origin or after 30 s, prints `FAIL - …`, saves the failure
// screenshot and exits 1. The only console errors tolerated are the 401/403 responses of a
// refused sign-in (Chromium logs them), while the dashboard's own #error reports it.
import { chromium } from 'playwright-core';
import os from 'node:os';
import path from 'node:path';

const TIMEOUT_MS = 30_000;
const STEP_MS = 15_000;

const env = process.env;
const BASE = (env.CAIRN_URL || '').replace(/\/+$/, '');
const OPERATOR = env.CAIRN_OPERATOR_TOKEN || '';
const NON_OPERATOR = env.CAIRN_NON_OPERATOR_TOKEN || '';
const TENANT = env.CAIRN_EXPECT_TENANT || '';
const OBJECTS = env.CAIRN_EXPECT_OBJECTS ?? '';
const DOWNLOAD_URLS = env.CAIRN_EXPECT_DOWNLOAD_URLS ?? '';
const SERVED_BYTES = env.CAIRN_EXPECT_SERVED_BYTES ?? '';
const RECLAIMED = env.CAIRN_EXPECT_RECLAIMED ?? '';
const SHOT = path.resolve(env.CAIRN_SCREENSHOT || path.join(os.tmpdir(), 'cairn-dashboard.png'));
const FAILED_SHOT = SHOT.replace(/(\.png)?$/i, '-failed.png');
const CHROMIUM = env.CAIRN_TEST_CHROMIUM || '/usr/bin/chromium';

class CheckFailed extends Error {}
const fail = (msg) => { throw new CheckFailed(msg); };
const ok = (msg) => console.log(`ok - ${msg}`);

// A CSS attribute-selector string literal for any text.
function cssString(text) {
  return '"' + String(text).replace(/[\\"]/g, '\\$&').replace(/[\u0000-\u001f\u007f]/g, (c) => `\\${c.charCodeAt(0).toString(16)} `) + '"';
}

let browser = null;
let page = null;
// Console errors the current step expects (the 401/403 responses of a refused sign-in).
let tolerated = null;
let reportProblem = () => {};
const problems = new Promise((_, reject) => {
  reportProblem = (msg) => reject(new CheckFailed(msg));
});
problems.catch(() => {});

async function main() {
  const missing = ['CAIRN_URL', 'CAIRN_OPERATOR_TOKEN', 'CAIRN_EXPECT_TENANT'].filter((k) => !env[k]);
  if (missing.length) fail(`missing environment: ${missing.join(', ')}`);
  for (const [name, v] of [['CAIRN_EXPECT_OBJECTS', OBJECTS], ['CAIRN_EXPECT_DOWNLOAD_URLS', DOWNLOAD_URLS],
    ['CAIRN_EXPECT_SERVED_BYTES', SERVED_BYTES], ['CAIRN_EXPECT_RECLAIMED', RECLAIMED]]) {
    if (v !== '' && !/^\d+$/.test(v)) fail(`${name} must be a whole number, got ${JSON.stringify(v)}`);
  }

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    timeout: STEP_MS,
  });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
  page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('pageerror', (err) => reportProblem(`uncaught error in the page: ${err && err.stack ? err.stack : err}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    if (tolerated && tolerated.test(text)) return;
    const loc = msg.location();
    reportProblem(`console error in the page: ${text}${loc && loc.url ? ` (${loc.url}:${loc.lineNumber})` : ''}`);
  });
  page.on('crash', () => reportProblem('the page crashed'));
  // The page must work offline: nothing but Cairn itself (and inline data: URLs).
  const origin = new URL(BASE).origin;
  page.on('request', (req) => {
    const u = req.url();
    if (!u.startsWith('data:') && new URL(u).origin !== origin) reportProblem(`the page requested an external resource: ${u}`);
  });

  // 1. The page itself.
  const url = `${BASE}/admin`;
  const res = await page.goto(url, { waitUntil: 'load' });
  if (!res) fail(`no response for ${url}`);
  const type = res.headers()['content-type'] || '';
  if (res.status() !== 200 || !type.startsWith('text/html')) fail(`GET ${url}: ${res.status()} ${type}, expected 200 text/html`);
  await page.locator('#token').waitFor({ state: 'visible' });
  await page.locator('#sign-in').waitFor({ state: 'visible' });
  ok(`GET /admin served the dashboard (${res.status()} ${type.split(';')[0]}), sign-in panel shown`);

  // 2. A token without `operator: true` is refused.
  if (NON_OPERATOR) {
    tolerated = /status of 40[13]\b/;
    await signInWith(NON_OPERATOR);
    const error = page.locator('#error');
    await error.waitFor({ state: 'visible' });
    const text = (await error.innerText()).trim();
    if (!/refused|not an operator|forbidden|403|401/i.test(text)) fail(`#error does not read as a refusal: ${JSON.stringify(text)}`);
    if (!(await page.locator('#sign-in-panel').isVisible())) fail('the sign-in panel is hidden after a refused sign-in');
    if (await page.locator('#dashboard').isVisible()) fail('the dashboard is shown after a refused sign-in');
    ok(`non-operator token refused: ${JSON.stringify(text.split('\n')[0])}`);

    await page.locator('#sign-out').click();
    await error.waitFor({ state: 'hidden' });
    if ((await page.locator('#token').inputValue()) !== '') fail('#token still holds a token after sign-out');
    const stored = await page.evaluate(() => Object.keys(sessionStorage).length);
    if (stored) fail('sessionStorage still holds data after sign-out');
    tolerated = null;
    ok('signed out: #error cleared, token forgotten');
  }

  // 3. The operator token: tenants table. A refusal is reported from #error (its 401/403
  // resource errors are left to that message).
  tolerated = /status of 40[13]\b/;
  await signInWith(OPERATOR);
  const row = page.locator(`#tenants tr[data-tenant=${cssString(TENANT)}]`);
  const errorBox = page.locator('#error');
  // Until the table has loaded (its row shows then or never) or #error shows.
  await page.waitForFunction(() => {
    const err = document.querySelector('#error');
    return (err && !err.hidden) || document.querySelector('#tenants[data-state="loaded"]');
  }, null, { timeout: STEP_MS }).catch(() => {});
  if (await errorBox.isVisible()) fail(`#error after signing in with the operator token: ${(await errorBox.innerText()).trim()}`);
  if (!(await row.isVisible())) {
    const shown = await page.$$eval('#tenants tr[data-tenant]', (rows) => rows.map((r) => r.dataset.tenant));
    fail(`no row for tenant ${JSON.stringify(TENANT)} in #tenants (rows: ${JSON.stringify(shown)})`);
  }
  tolerated = null;
  ok(`operator sign-in: ${await page.locator('#tenants tr[data-tenant]').count()} tenant row(s), including ${JSON.stringify(TENANT)}`);

  const order = await page.$$eval('#tenants tr[data-tenant] td[data-col="physical"]', (cells) => cells.map((c) => Number(c.dataset.value)));
  for (let i = 1; i < order.length; i++) {
    if (order[i] > order[i - 1]) fail(`#tenants is not sorted by physical bytes, largest first: ${JSON.stringify(order)}`);
  }
  ok('tenants sorted by stored (physical) bytes, largest first');

  if (OBJECTS !== '') {
    const cell = row.locator('td[data-col="objects"]');
    const value = await cell.getAttribute('data-value');
    const text = (await cell.innerText()).trim();
    if (value !== OBJECTS || text.replace(/[^\d]/g, '') !== OBJECTS) {
      fail(`tenant ${JSON.stringify(TENANT)} shows ${JSON.stringify(text)} objects (data-value ${value}), expected ${OBJECTS}`);
    }
    ok(`tenant ${JSON.stringify(TENANT)} shows ${text} objects`);
  }
  // The two download measures: URLs handed out, and bytes actually served (what egress is priced from).
  for (const [col, want, what] of [['download_urls', DOWNLOAD_URLS, 'download URLs issued'], ['served', SERVED_BYTES, 'bytes served']]) {
    if (want === '') continue;
    const cell = row.locator(`td[data-col="${col}"]`);
    if (!(await cell.count())) fail(`tenant ${JSON.stringify(TENANT)} has no ${col} cell`);
    const value = await cell.getAttribute('data-value');
    if (value !== want) fail(`tenant ${JSON.stringify(TENANT)} shows ${value} ${what} (data-col ${col}), expected ${want}`);
    ok(`tenant ${JSON.stringify(TENANT)} shows ${value} ${what}: ${JSON.stringify((await cell.innerText()).trim().split('\n')[0])}`);
  }

  // 4. Its detail: the daily chart.
  await row.click();
  const detail = page.locator(`#tenant-detail[data-tenant=${cssString(TENANT)}]`);
  await detail.waitFor({ state: 'visible' });
  const heading = (await page.locator('#tenant-detail-title').innerText()).trim();
  if (!heading.includes(TENANT)) fail(`#tenant-detail's heading ${JSON.stringify(heading)} does not name ${JSON.stringify(TENANT)}`);
  const storage = await page.waitForFunction((tenant) => {
    const chart = document.querySelector('#chart');
    if (!chart || chart.dataset.tenant !== tenant) return null;
    const p = chart.querySelector('svg path.series[data-series="storage"]');
    const d = p && p.getAttribute('d');
    return d && d.trim() ? d : null;
  }, TENANT, { timeout: STEP_MS }).then((h) => h.jsonValue()).catch(async () => {
    const err = await page.locator('#detail-error').isVisible() ? (await page.locator('#detail-error').innerText()).trim() : '';
    fail(`#chart svg path.series[data-series="storage"] was not drawn for ${JSON.stringify(TENANT)}${err ? `: ${err}` : ''}`);
  });
  const points = (storage.match(/[ML]/g) || []).length;
  const series = await page.$$eval('#chart svg path.series', (ps) => ps.map((p) => p.dataset.series).sort());
  for (const s of ['egress', 'storage', 'uploads']) if (!series.includes(s)) fail(`#chart lacks the ${s} series (has ${series.join(', ')})`);
  ok(`#tenant-detail for ${JSON.stringify(TENANT)}: chart with series ${series.join(', ')} (${points} daily points)`);

  // 5. Lifecycle runs.
  const runs = page.locator('#lifecycle-runs');
  if (!(await runs.count())) fail('#lifecycle-runs is missing');
  await page.locator('#lifecycle-runs[data-state="loaded"], #lifecycle-runs[data-state="error"]').waitFor({ state: 'attached' });
  if ((await runs.getAttribute('data-state')) !== 'loaded') {
    fail(`lifecycle runs did not load: ${(await page.locator('#runs-error').innerText()).trim()}`);
  }
  ok(`#lifecycle-runs present (${await runs.locator('tbody tr[data-run]').count()} run(s) listed)`);
  if (RECLAIMED !== '') {
    const cell = runs.locator('tbody tr[data-run]').first().locator('td[data-col="reclaimed"]');
    if (!(await cell.count())) fail('the latest lifecycle run has no bytes reclaimed cell');
    const value = await cell.getAttribute('data-value');
    if (value !== RECLAIMED) fail(`the latest lifecycle run shows ${value} bytes reclaimed, expected ${RECLAIMED}`);
    ok(`the latest lifecycle run shows ${value} bytes reclaimed`);
  }

  // 6. Screenshot, once nothing is pending.
  await page.evaluate(() => document.fonts.ready);
  await page.screenshot({ path: SHOT, fullPage: true });
  ok(`screenshot written to ${SHOT}`);
  await new Promise((r) => setTimeout(r, 100)); // late console errors
  ok('no uncaught page errors and no console errors');
}

async function signInWith(token) {
  await page.locator('#token').fill(token);
  await page.locator('#sign-in').click();
}

let timer;
const timeout = new Promise((_, reject) => {
  timer = setTimeout(() => reject(new CheckFailed(`timed out after ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
});

let code = 0;
try {
  await Promise.race([main(), timeout, problems]);
} catch (e) {
  code = 1;
  // Playwright's errors carry a call log (with colour codes) after the message; no stack needed.
  const msg = e instanceof CheckFailed ? e.message : String((e && e.message) || e).replace(/\x1b\[[0-9;]*m/g, '');
  console.error(`FAIL - ${msg}`);
  if (page) {
    try {
      await page.screenshot({ path: FAILED_SHOT, fullPage: true, timeout: 5000 });
      console.error(`failure screenshot written to ${FAILED_SHOT}`);
    } catch (shotErr) {
      console.error(`could not save ${FAILED_SHOT}: ${shotErr.message.split('\n')[0]}`);
    }
  }
} finally {
  clearTimeout(timer);
  if (browser) await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
}
process.exit(code);
