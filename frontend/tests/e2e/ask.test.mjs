/* SPDX-License-Identifier: Apache-2.0 */
// The Ask view in Chromium, through nginx, against the real api with the chat
// completions stand-in as the model: the answer streams in, a citation marker opens its
// passage, Stop ends the answer (and the api's request to the model), conversations are
// listed, renamed and deleted, all with the keyboard, at laptop and phone width. Also
// checks that nginx passes the event stream on as it is written, not when it ends.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { startStack, REPO, PASSWORD, launchChromium, signedInPage, LAPTOP } from './stack.mjs';
import { client } from '../../../tests/lib/apiclient.mjs';
import { startFakeChat } from '../../../tests/lib/fakechat.mjs';
import { postStream } from '../../../tests/lib/sse.mjs';
import { waitFor } from '../../../tests/lib/almanac.mjs';

const SHOTS = path.join(REPO, 'test-output', 'screenshots');
const PHONE = { width: 390, height: 844 };
const HANDBOOK = `# Travel handbook

## Meals

Meals during business travel are reimbursed up to 45 euros per day. Keep every receipt.

## Trains

Trains are booked in second class; first class is allowed for trips over four hours.
`;

describe('Ask view in Chromium', { timeout: 600000 }, () => {
  let stack, chat, browser, page, token;

  before(async () => {
    fs.mkdirSync(SHOTS, { recursive: true });
    chat = await startFakeChat();
    stack = await startStack({ maxUploadBytes: 65536, apiEnv: { ALMANAC_LLM_URL: chat.url, ALMANAC_LLM_TIMEOUT_MS: '20000' } });
    const c = client(stack.api);
    token = await c.login('alice@example.org', PASSWORD);
    const kb = await c.createKb(token, 'Travel');
    const up = await c.upload(token, kb.id, 'travel.md', HANDBOOK, { type: 'text/markdown', title: 'Travel handbook' });
    assert.equal(up.status, 202, up.body);
    await c.waitReady(token, [up.json.id]);
    browser = await launchChromium();
    page = await signedInPage(browser, stack, 'alice@example.org');
  });

  after(async () => {
    if (browser) await browser.close();
    if (stack) await stack.stop();
    if (chat) await chat.close();
  });

  test('nginx passes the event stream on as the api writes it', async () => {
    chat.setMode('ok', { ms: 150 });
    const r = await postStream(`${stack.url}/api/v1/answers`, { question: 'How much are meals reimbursed per day?', stream: true }, { token });
    assert.equal(r.status, 200);
    const first = r.events.find((e) => e.event === 'delta');
    const done = r.events.at(-1);
    assert.equal(done.event, 'done');
    assert.ok(done.ms - first.ms > 1000, `the first delta came ${Math.round(done.ms - first.ms)} ms before the end, not with it`);
  });

  test('the answer streams in; a citation opens its passage; keyboard only', async () => {
    chat.setMode('ok', { ms: 120 });
    await page.getByRole('link', { name: 'Ask' }).click();
    await page.getByRole('heading', { name: 'Ask', level: 1 }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement.id), 'ask-question', 'the question field has the focus');
    await page.keyboard.type('How much are meals reimbursed per day?');
    await page.keyboard.press('Enter');
    const stop = page.getByRole('button', { name: 'Stop' });
    await stop.waitFor({ state: 'visible' });
    await page.locator('.answer-text').filter({ hasText: 'Meals' }).waitFor();
    assert.ok(await stop.isVisible(), 'text is shown while the answer still streams');
    await stop.waitFor({ state: 'hidden' });
    const answer = page.locator('.turn').last();
    assert.match(await answer.locator('.answer-text').innerText(), /45 euros per day/);
    const cite = answer.locator('button.cite').first();
    assert.match(await cite.getAttribute('aria-label'), /Source 1: Travel handbook, Meals/);
    await page.screenshot({ path: path.join(SHOTS, 'ask-laptop.png'), fullPage: true });
    await cite.focus();
    await page.keyboard.press('Enter');
    const dlg = page.locator('dialog.citation[open]');
    await dlg.waitFor();
    assert.match(await dlg.locator('mark.passage').innerText(), /45 euros per day/);
    await page.keyboard.press('Escape');
    await dlg.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(() => document.activeElement.className), 'cite', 'focus returns to the marker');
    await page.locator('.conversation-open[aria-current="true"]', { hasText: 'How much are meals reimbursed' }).waitFor();
  });

  test('Stop (Escape) ends the answer and the request to the model', async () => {
    chat.setMode('ok', { ms: 700 });
    const before = chat.count;
    await page.locator('#ask-question').focus();
    await page.keyboard.type('Which class are trains booked in?');
    await page.keyboard.press('Enter');
    await page.locator('.turn').last().locator('.answer-text').filter({ hasText: /\S/ }).waitFor();
    await page.keyboard.press('Escape');
    await page.locator('.turn').last().getByText('Stopped.').waitFor();
    await waitFor(() => chat.count > before && chat.requests.at(-1).closedAt, { timeoutMs: 5000, what: 'the upstream request closed' });
    const r = chat.requests.at(-1);
    assert.ok(r.closedAt - r.at < 6000, 'closed long before the answer would have ended');
    chat.setMode('ok');
  });

  test('conversations: follow up, rename and delete', async () => {
    const list = page.locator('.conversation');
    const n = await list.count();
    assert.ok(n >= 1);
    await page.locator('.conversation-open').first().click();
    await page.locator('.turn').first().waitFor();
    await page.locator('#ask-question').fill('And trains?');
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Stop' }).waitFor({ state: 'hidden' });
    const first = page.locator('.conversation').first();
    await first.getByRole('button', { name: /^Rename/ }).click();
    await page.keyboard.press('Control+A');
    await page.keyboard.type('Travel questions');
    await page.keyboard.press('Enter');
    await page.locator('.conversation-open', { hasText: 'Travel questions' }).waitFor();
    await page.locator('.conversation').first().getByRole('button', { name: /^Delete/ }).click();
    await page.locator('dialog.confirm').getByRole('button', { name: 'Delete' }).click();
    await page.locator('.conversation-open', { hasText: 'Travel questions' }).waitFor({ state: 'detached' });
    assert.equal(await list.count(), n - 1);
  });

  test('phone width: one column, nothing wider than the screen', async () => {
    await page.setViewportSize(PHONE);
    await page.locator('#ask-question').fill('How much are meals reimbursed per day?');
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Stop' }).waitFor({ state: 'hidden' });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the phone`);
    await page.screenshot({ path: path.join(SHOTS, 'ask-phone.png'), fullPage: true });
    await page.setViewportSize(LAPTOP);
  });
});
