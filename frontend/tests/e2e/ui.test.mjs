/* SPDX-License-Identifier: Apache-2.0 */
// End-to-end tests of the web frontend in a real browser: playwright-core driving
// Debian's Chromium (never a downloaded one) against nginx serving the built site and a
// real api, worker and beat on real PostgreSQL and Redis (the Qdrant stand-in holds the
// vectors). Screenshots of the main screens go to test-output/screenshots/.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { startStack, REPO, PASSWORD, launchChromium, LAPTOP } from './stack.mjs';
import { httpRequest, runAlmanac } from '../../../tests/lib/almanac.mjs';

const SHOTS = path.join(REPO, 'test-output', 'screenshots');
const MAX_UPLOAD = 4096;
const PHONE = { width: 390, height: 844 };

const ONBOARDING_MD = `# Onboarding handbook

Welcome to the team. This handbook explains the first week.

## Equipment

Every new colleague receives a laptop and a security key on the first day. Returning
equipment happens on the last day, at the front desk.

## Expenses

Travel expenses are reimbursed within two weeks when receipts are attached.
`;

const INCIDENTS_HTML = `<!doctype html><html><head><title>Incident guide</title></head><body>
<h1>Incident guide</h1>
<p>When production breaks, page the on-call engineer and open an incident channel.</p>
<h2>Severity levels</h2>
<p>Severity one means customers cannot work; severity two means a degraded service.</p>
<h2>Postmortems</h2>
<p>Every severity one incident gets a blameless postmortem within five days.</p>
</body></html>
`;

function tempFile(dir, name, data) {
  const p = path.join(dir, name);
  fs.writeFileSync(p, data);
  return p;
}

describe('web frontend in Chromium', { timeout: 600000 }, () => {
  let stack, browser, ctx, page, files;
  const consoleProblems = [];

  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    stack = await startStack({ maxUploadBytes: MAX_UPLOAD });
    browser = await launchChromium();
    ctx = await browser.newContext({ viewport: LAPTOP, baseURL: stack.url });
    ctx.setDefaultTimeout(15000);
    page = await ctx.newPage();
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) consoleProblems.push(m.text());
    });
    page.on('pageerror', (e) => consoleProblems.push(`page error: ${e.message}`));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'almanac-e2e-files-'));
    files = {
      md: tempFile(dir, 'onboarding.md', ONBOARDING_MD),
      html: tempFile(dir, 'incidents.html', INCIDENTS_HTML),
      big: tempFile(dir, 'big.txt', 'too large '.repeat(900)), // 9000 bytes > 4096: the api's 413
      huge: tempFile(dir, 'huge.txt', 'x'.repeat(200 * 1024)), // over nginx's limit too
      png: tempFile(dir, 'archive.gz', Buffer.from('1f8b0800000000000003030000000000000000', 'hex')), // no accepted type
    };
  });

  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  const shot = (name, fullPage = true) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });

  test('nginx: headers, caching, gzip, /healthz, /api/ready, body limit', async () => {
    const idx = await httpRequest(`${stack.url}/`);
    assert.equal(idx.status, 200);
    assert.equal(idx.headers['cache-control'], 'no-cache');
    const csp = idx.headers['content-security-policy'];
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(idx.headers['x-content-type-options'], 'nosniff');
    assert.equal(idx.headers['referrer-policy'], 'no-referrer');
    assert.doesNotMatch(idx.body, /<script>(?!<\/script>)/, 'no inline scripts');
    const js = idx.body.match(/src="(\/assets\/[^"]+\.js)"/)[1];
    const asset = await httpRequest(`${stack.url}${js}`, { headers: { 'Accept-Encoding': 'gzip' } });
    assert.equal(asset.status, 200);
    assert.match(asset.headers['cache-control'], /max-age=31536000, immutable/);
    assert.equal(asset.headers['content-encoding'], 'gzip');
    assert.equal(asset.headers['x-content-type-options'], 'nosniff', 'security headers on assets too');
    const hz = await httpRequest(`${stack.url}/healthz`);
    assert.equal(hz.status, 200);
    const ready = await httpRequest(`${stack.url}/api/ready`);
    assert.equal(ready.status, 200, ready.body);
    assert.match(ready.headers['content-type'], /application\/health\+json/);
    assert.ok(JSON.parse(ready.body).checks['postgres:responseTime']);
    const deep = await httpRequest(`${stack.url}/some/client/route`);
    assert.equal(deep.status, 200, 'unknown paths get the app');
    const api404 = await httpRequest(`${stack.url}/api/v1/nope`);
    assert.equal(api404.status, 404);
    assert.equal(JSON.parse(api404.body).error.code, 'not_found', 'the api answers /api/');
    const tooBig = await httpRequest(`${stack.url}/api/v1/knowledge-bases/1/documents?filename=a.txt`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain', 'Content-Length': 200 * 1024 },
      body: Buffer.alloc(200 * 1024, 120),
    });
    assert.equal(tooBig.status, 413);
    assert.equal(JSON.parse(tooBig.body).error.code, 'payload_too_large');
  });

  test('wrong password says so', async () => {
    await page.goto('/');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await shot('signin-laptop');
    await page.getByLabel('Email').fill('admin@example.org');
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Wrong email or password.' }).waitFor();
    await shot('signin-wrong-password');
    assert.equal(await page.getByLabel('Password').inputValue(), '', 'password cleared');
  });

  test('too many failed sign-ins are rate limited, with the wait', async () => {
    await page.getByLabel('Email').fill('locked@example.org');
    let text = '';
    for (let i = 0; i < 8 && !/Too many/.test(text); i++) {
      await page.getByLabel('Password').fill(`wrong-password-${i}`);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').waitFor();
      await page.waitForFunction(() => !document.querySelector('button[type=submit]').disabled);
      text = await page.getByRole('alert').innerText();
    }
    assert.match(text, /Too many failed sign-ins\. Try again in \d+ (minutes?|seconds?)\./);
  });

  test('sign in with the keyboard; visible focus', async () => {
    await page.goto('/#/signin');
    await page.getByLabel('Email').waitFor();
    await page.getByLabel('Email').fill('');
    await page.getByLabel('Email').focus();
    await page.keyboard.type('admin@example.org');
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => document.activeElement.id);
    assert.equal(focused, 'signin-password');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'focused field has a visible outline');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Knowledge bases', level: 1 }).waitFor();
    assert.equal(await page.getByRole('link', { name: 'Operations' }).count(), 1, 'admins see Operations');
    assert.doesNotMatch(page.url(), /token|eyJ/, 'no token in the URL');
  });

  test('create a knowledge base, upload two files, watch them become ready', async () => {
    await page.getByLabel('New knowledge base name').fill('Team handbook');
    await page.getByRole('button', { name: 'Create knowledge base' }).click();
    await page.getByRole('heading', { name: 'Team handbook', level: 1 }).waitFor();
    await page.evaluate(() => {
      window.__sameDocument = true; // gone if the page reloads
    });
    // Record every status each document shows, without reloading.
    await page.evaluate(() => {
      window.__seen = {};
      const record = () => {
        for (const tr of document.querySelectorAll('tr[data-doc-id]')) {
          const s = (window.__seen[tr.dataset.docId] ||= []);
          if (s[s.length - 1] !== tr.dataset.status) s.push(tr.dataset.status);
        }
      };
      new MutationObserver(record).observe(document.querySelector('main'), { subtree: true, childList: true, attributes: true });
    });
    await page.locator('#file-input').setInputFiles([files.md, files.html]);
    await page.locator('tr[data-doc-id]').nth(1).waitFor();
    await page.waitForFunction(() => document.querySelectorAll('tr[data-doc-id][data-status="ready"]').length === 2, null, {
      timeout: 30000,
    });
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no reload');
    const seen = await page.evaluate(() => window.__seen);
    for (const statuses of Object.values(seen)) {
      assert.equal(statuses[statuses.length - 1], 'ready');
      assert.ok(statuses.length >= 2 && ['pending', 'processing'].includes(statuses[0]), `went through: ${statuses}`);
    }
    const titles = await page.locator('tr[data-doc-id] .doc-title').allInnerTexts();
    // titles from the documents' first headings, not their file names
    assert.deepEqual(titles.sort(), ['Incident guide', 'Onboarding handbook']);
    await page.waitForTimeout(300);
    await shot('documents-laptop');
  });

  test('oversized and unsupported uploads say why', async () => {
    await page.locator('#file-input').setInputFiles([files.big]);
    const big = page.locator('li.upload.failed[data-filename="big.txt"]');
    await big.waitFor();
    assert.match(await big.innerText(), /Too large: documents must not be larger than 4096 bytes\./);
    await page.locator('#file-input').setInputFiles([files.huge]);
    const huge = page.locator('li.upload.failed[data-filename="huge.txt"]');
    await huge.waitFor();
    assert.match(await huge.innerText(), /Too large: the upload is larger than this server accepts\./);
    await page.locator('#file-input').setInputFiles([files.png]);
    const png = page.locator('li.upload.failed[data-filename="archive.gz"]');
    await png.waitFor();
    assert.match(await png.innerText(), /Unsupported file type\. Upload text, Markdown, HTML, PDF, Word, PowerPoint, Excel, OpenDocument, EPUB or an image/);
    await shot('upload-errors-laptop');
    await page.getByRole('button', { name: 'Dismiss message about archive.gz' }).click();
    assert.equal(await png.count(), 0);
  });

  test('search and open a citation', async () => {
    await page.getByRole('link', { name: 'Search' }).click();
    const box = page.getByRole('searchbox', { name: 'Search' });
    await box.waitFor();
    await page.getByLabel('Team handbook').waitFor();
    await box.fill('returning equipment');
    await box.press('Enter');
    const first = page.locator('li.result').first();
    await first.waitFor();
    assert.match(await first.locator('.result-title').innerText(), /Onboarding handbook/);
    assert.ok((await first.locator('.snippet mark').count()) > 0, 'highlighted words');
    assert.match(await first.locator('.result-meta').innerText(), /Team handbook · § Equipment · score \d\.\d{3}/);
    await shot('search-laptop');
    await first.locator('.result-title button').click();
    const dlg = page.getByRole('dialog', { name: 'Onboarding handbook' });
    await dlg.waitFor();
    const passage = dlg.locator('mark.passage');
    await passage.waitFor();
    assert.match(await passage.innerText(), /Returning\s+equipment happens on the last day/);
    assert.match(await dlg.locator('.doc-text').innerText(), /Onboarding handbook/, 'the whole document around it');
    await shot('citation-laptop', false);
    await page.keyboard.press('Escape');
    await dlg.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Onboarding handbook', 'focus back on the result');
    // snippets are text: the HTML document's markup never becomes markup
    await box.fill('blameless postmortem');
    await box.press('Enter');
    await page.locator('li.result .result-title', { hasText: 'Incident guide' }).first().waitFor();
    assert.equal(await page.locator('.snippet *:not(mark)').count(), 0);
  });

  test('operations view: readiness, workers, queues, re-indexing', async () => {
    const reindex = await runAlmanac(['reindex', '--no-wait'], { env: stack.env });
    assert.equal(reindex.code, 0, reindex.stderr);
    const run = JSON.parse(reindex.stdout.trim());
    await page.getByRole('link', { name: 'Operations' }).click();
    await page.getByRole('heading', { name: 'Operations', level: 1 }).waitFor();
    for (const dep of ['postgres', 'redis', 'qdrant']) {
      await page.locator(`tr[data-check="${dep}"] .status-pass`).waitFor();
    }
    assert.match(await page.locator('tr[data-check="postgres"]').innerText(), /\d+\.\d ms/);
    await page.locator('tr[data-role="worker"]').waitFor();
    await page.locator('tr[data-role="beat"]').waitFor();
    assert.match(await page.locator('tr[data-role="worker"]').innerText(), /\d+ s ago/);
    assert.match(await page.locator('tr[data-queue="ingest"]').innerText(), /ingest/);
    assert.match(await page.locator('#ops-readiness').innerText(), /search: hybrid/);
    const row = page.locator(`tr[data-reindex="${run.run}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), new RegExp(`#${run.run} all[\\s\\S]*${run.examined} / ${run.examined}`));
    await page.waitForFunction((id) => /Done/.test(document.querySelector(`tr[data-reindex="${id}"]`)?.textContent || ''), run.run, { timeout: 60000 });
    const first = await page.locator('#ops-updated').innerText();
    await page.waitForFunction((t) => document.getElementById('ops-updated').textContent !== t, first, { timeout: 12000 });
    await shot('operations-laptop');
  });

  test('phone width: the main screens fit', async () => {
    await page.setViewportSize(PHONE);
    const noSideScroll = async (what) => {
      const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(over <= 1, `${what}: ${over}px wider than the screen`);
    };
    await page.locator('tr[data-role="worker"]').waitFor();
    await noSideScroll('operations');
    await shot('operations-phone');
    await page.getByRole('link', { name: 'Knowledge bases' }).click();
    await page.getByRole('link', { name: 'Team handbook' }).click();
    await page.locator('tr[data-doc-id]').first().waitFor();
    await noSideScroll('documents');
    await shot('documents-phone');
    await page.getByRole('link', { name: 'Search' }).click();
    await page.getByLabel('Team handbook').waitFor();
    await page.getByRole('searchbox', { name: 'Search' }).fill('severity');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.locator('li.result').first().waitFor();
    await noSideScroll('search');
    await shot('search-phone');
    await page.locator('li.result .result-title button').first().click();
    await page.locator('mark.passage').waitFor();
    await shot('citation-phone', false);
    await page.keyboard.press('Escape');
    await page.setViewportSize(LAPTOP);
  });

  test('sign out', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.locator('#signin-messages').getByText('You are signed out.').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'token dropped');
    await page.goto('/#/search');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  });

  test('a user: no operations view; an expired session goes back to sign-in', async () => {
    const phone = await browser.newContext({ viewport: PHONE, baseURL: stack.url });
    const p = await phone.newPage();
    await p.goto('/');
    await p.getByLabel('Email').fill('alice@example.org');
    await p.getByLabel('Password').fill(PASSWORD);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('heading', { name: 'Knowledge bases', level: 1 }).waitFor();
    await p.screenshot({ path: path.join(SHOTS, 'knowledge-bases-phone.png'), fullPage: true });
    assert.equal(await p.getByRole('link', { name: 'Operations' }).count(), 0);
    await p.goto('/#/operations');
    await p.locator('main').getByText('The operations view is for administrators.').waitFor();
    // The api says the token is no longer valid (it expired): back to sign-in, told why.
    await p.route('**/api/v1/knowledge-bases**', (r) =>
      r.fulfill({
        status: 401,
        contentType: 'application/json',
        body: '{"error":{"code":"unauthorized","message":"token expired","request_id":"x"}}',
      }),
    );
    await p.getByRole('link', { name: 'Search' }).click();
    await p.getByRole('heading', { name: 'Sign in' }).waitFor();
    await p.locator('#signin-messages').getByText('Your session has expired. Sign in again.').waitFor();
    await phone.close();
  });

  test('no Content-Security-Policy violations or page errors', () => {
    assert.deepEqual(consoleProblems, []);
  });
});
