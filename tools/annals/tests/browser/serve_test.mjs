// The annals serve page in headless Chromium (Debian's /usr/bin/chromium),
// driven with playwright-core. Run by serve_browser_test.sh, which starts the
// server on a test store and sets:
//   BASE_URL    http://127.0.0.1:PORT
//   APPEND      the annals_test_append program (a second writer process)
//   DB          the store file
//   ARTIFACTS   where the screenshots go
//   PROFILE     a fresh, empty Chromium profile directory
// Every step that fails throws; the script exits 1 with the reason.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';

const { BASE_URL, APPEND, DB, ARTIFACTS, PROFILE } = process.env;
for (const [name, value] of Object.entries({ BASE_URL, APPEND, DB, ARTIFACTS, PROFILE })) {
  if (!value) throw new Error(`${name} is not set`);
}
const SCRIPT_ID = '<script>window.__pwned = 1</script>';
const timeout = 20000;

function step(text) {
  console.log(`browser: ${text}`);
}

const context = await chromium.launchPersistentContext(PROFILE, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1100, height: 640 },
});
try {
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(timeout);
  const problems = [];
  page.on('dialog', dialog => { problems.push(`a dialog opened: ${dialog.message()}`); dialog.dismiss(); });
  page.on('pageerror', error => problems.push(`page error: ${error.message}`));
  page.on('console', message => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  // Nothing may be loaded from anywhere but the server itself.
  page.on('request', request => {
    const url = request.url();
    if (!url.startsWith(BASE_URL) && !url.startsWith('data:')) problems.push(`request outside: ${url}`);
  });

  step('open the page');
  await page.goto(`${BASE_URL}/`);
  await page.locator('h2', { hasText: 'Streams' }).waitFor();
  await page.locator('#store-head').filter({ hasText: /^head \d+$/ }).waitFor();

  step('search streams by prefix');
  await page.fill('#prefix', 'account-');
  await page.click('#search');
  await page.waitForFunction(() => location.hash.includes('prefix=account-'));
  await page.locator('h2', { hasText: 'account-' }).waitFor();
  const ids = await page.locator('a.stream-link').allTextContents();
  assert.ok(ids.length >= 3, `expected the account streams, got ${JSON.stringify(ids)}`);
  assert.ok(ids.every(id => id.startsWith('account-')), `not all match the prefix: ${JSON.stringify(ids)}`);

  step('open a stream');
  await page.click('a.stream-link >> text="account-1"');
  await page.locator('#stream-id', { hasText: 'account-1' }).waitFor();
  const versions = await page.locator('#events tbody tr td:first-child').allTextContents();
  assert.deepEqual(versions.slice(0, 2), ['4', '3'], 'newest first');
  await page.click('text=Oldest first');
  await page.waitForFunction(() => location.hash.includes('order=oldest'));
  await page.locator('#events tbody tr td:first-child').first().filter({ hasText: /^1$/ }).waitFor();

  step('open an event');
  await page.locator('a.event-link').first().click();
  await page.locator('#payload').waitFor();
  assert.equal(await page.textContent('#event-type'), 'bank.AccountOpened');
  assert.match(await page.textContent('#payload'), /"owner": "Ada Lovelace"/);
  assert.match(await page.textContent('#event-hash'), /^[0-9a-f]{64}$/);
  assert.match(await page.textContent('#metadata'), /"correlation_id"/);
  await page.mouse.move(0, 600);  // no hover highlight in the screenshots
  await page.screenshot({ path: `${ARTIFACTS}/serve-event.png` });

  step('a <script> stream id and HTML in a payload show as text');
  await page.goto(`${BASE_URL}/#/streams?prefix=${encodeURIComponent('<script')}`);
  const scriptLink = page.locator('a.stream-link').first();
  await scriptLink.waitFor();
  assert.equal(await scriptLink.textContent(), SCRIPT_ID);
  await scriptLink.click();
  await page.locator('#stream-id').filter({ hasText: SCRIPT_ID }).waitFor();
  await page.locator('a.event-link').first().click();
  await page.locator('#payload').waitFor();
  assert.match(await page.textContent('#payload'), /<img src=x onerror=/);
  assert.equal(await page.evaluate(() => document.querySelectorAll('script').length), 1,
               'only the page\'s own script element exists');
  assert.equal(await page.evaluate(() => document.querySelectorAll('main img').length), 0,
               'no element was made from stored text');
  assert.equal(await page.evaluate(() => window.__pwned), undefined, 'stored text ran as script');

  step('the live tail shows an event another process appends');
  await page.click('nav >> text=Live tail');
  await page.locator('#tail-status', { hasText: 'live' }).waitFor();
  await page.locator('#tail-rows tr').first().waitFor();
  const stream = `account-${process.pid}`;
  const position = execFileSync(APPEND, [DB, stream, 'bank.AccountOpened',
    JSON.stringify({ owner: 'Grace Hopper', currency: 'EUR' }),
    JSON.stringify({ actor: 'browser-test' })]).toString().trim();
  const row = page.locator(`#tail-rows tr[data-position="${position}"]`);
  await row.waitFor();
  assert.equal((await row.locator('td').nth(1).textContent()), stream);
  assert.equal(await page.locator('#tail-rows tr').first().getAttribute('data-position'), position,
               'the newest event is on top');
  await page.mouse.move(0, 600);
  await page.screenshot({ path: `${ARTIFACTS}/serve-tail.png` });

  step('verify the chain with progress');
  await page.click('nav >> text=Verify');
  await page.click('#verify');
  await page.locator('#verify-result', { hasText: 'hash chain intact' }).waitFor();
  assert.match(await page.textContent('#verify-count'), new RegExp(`^${position} of ${position} events checked$`));

  step('projections');
  await page.click('nav >> text=Projections');
  await page.locator('h2', { hasText: 'Projections' }).waitFor();

  step('a stream page of the store, for the documentation');
  await page.goto(`${BASE_URL}/#/stream?id=account-1`);
  await page.locator('#stream-id', { hasText: 'account-1' }).waitFor();
  await page.mouse.move(0, 600);
  await page.screenshot({ path: `${ARTIFACTS}/serve.png` });

  assert.deepEqual(problems, [], 'the page reported problems');
  step('ok');
} finally {
  await context.close();
}
