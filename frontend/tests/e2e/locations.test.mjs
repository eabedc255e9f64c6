/* SPDX-License-Identifier: Apache-2.0 */
// Where a passage came from, in Chromium: a multi-page PDF, a PPTX and an XLSX made by
// real producers (tests/lib/docmakers.mjs) are extracted by the worker; a word found only
// on page 2, slide 3 or the second sheet shows that location in the search results and
// in the citation, and an answer's citations (the chat completions stand-in as the model)
// name their page, slide or sheet and open their passage.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startStack, PASSWORD, launchChromium, signedInPage } from './stack.mjs';
import { client } from '../../../tests/lib/apiclient.mjs';
import { startFakeChat } from '../../../tests/lib/fakechat.mjs';
import { makePdf, makePptx, makeXlsx } from '../../../tests/lib/docmakers.mjs';

const KB = 'Harbour';

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('page, slide and sheet of a passage in Chromium', { timeout: 600000 }, () => {
  let stack, chat, browser, page;
  const docs = {}; // pdf, pptx, xlsx: {id, title}

  before(async () => {
    chat = await startFakeChat();
    stack = await startStack({ maxUploadBytes: 1 << 20, apiEnv: { ALMANAC_LLM_URL: chat.url, ALMANAC_LLM_TIMEOUT_MS: '20000' } });
    const c = client(stack.api);
    const token = await c.login('alice@example.org', PASSWORD);
    const kb = await c.createKb(token, KB);
    const files = {
      pdf: ['rules.pdf', makePdf([['Harbour rules apply to every visitor.'], ['The lighthouse keeper rings the fog bell at dusk.'], ['Anchors are checked weekly.']], { title: 'Harbour Rules' }), 'application/pdf'],
      pptx: [
        'talk.pptx',
        await makePptx(
          [
            { title: 'Welcome', body: 'Opening remarks about the quay.' },
            { title: 'Boats', body: 'Rowing boats are moored at the east pier.' },
            { title: 'Tides', body: 'Tide tables arrive on Mondays with the mackerel.' },
          ],
          { title: 'Tide Talk' },
        ),
        'application/octet-stream',
      ],
      xlsx: ['crew.xlsx', await makeXlsx({ Budget: [['Item', 'Cost'], ['Ferry', 1200]], Staff: [['Name', 'Role'], ['Ada', 'Navigator']] }), 'application/octet-stream'],
    };
    for (const [key, [name, data, type]] of Object.entries(files)) {
      const up = await c.upload(token, kb.id, name, data, { type });
      assert.equal(up.status, 202, up.body);
      docs[key] = { id: up.json.id };
    }
    const ready = await c.waitReady(token, Object.values(docs).map((d) => d.id), { timeoutMs: 180000 });
    for (const d of Object.values(docs)) d.title = ready.get(d.id).title;

    browser = await launchChromium();
    page = await signedInPage(browser, stack, 'alice@example.org');
  });

  after(async () => {
    if (browser) await browser.close();
    if (stack) await stack.stop();
    if (chat) await chat.close();
  });

  // [document, words found only there, the UI's location, its section, words of the passage]
  const cases = [
    ['pdf', 'fog bell', 'page 2', null, /lighthouse keeper rings the fog bell/],
    ['pptx', 'mackerel', 'slide 3', null, /Tide tables arrive on Mondays with the mackerel/],
    ['xlsx', 'Navigator', 'sheet 2', 'Staff', /Ada \| Navigator/],
  ];

  test('a search result and its citation show the page, slide or sheet', async () => {
    await page.getByRole('link', { name: 'Search' }).click();
    const box = page.getByRole('searchbox', { name: 'Search' });
    await box.waitFor();
    await page.getByLabel(KB).waitFor();
    await page.getByLabel('Match by').selectOption('keyword');
    for (const [key, words, where, section, passage] of cases) {
      const doc = docs[key];
      await box.fill(words);
      await box.press('Enter');
      const result = page.locator(`li.result[data-document-id="${doc.id}"]`).first();
      await result.waitFor();
      assert.equal(await page.locator('li.result').count(), 1, `"${words}" is only in ${key}`);
      assert.equal(await result.locator('.result-location').innerText(), ` · ${where}`);
      const meta = `${KB} · ${where}${section ? ` · § ${section}` : ''} · score`;
      assert.match(await result.locator('.result-meta').innerText(), new RegExp(`^${escape(meta)} \\d\\.\\d{3}`));
      await result.locator('.result-title button').click();
      const dlg = page.getByRole('dialog', { name: doc.title });
      await dlg.waitFor();
      assert.match(await dlg.locator('.citation-head p').innerText(), new RegExp(`^${escape(KB)} · ${escape(where)}( · |$)`));
      const mark = dlg.locator('mark.passage');
      await mark.waitFor();
      assert.match(await mark.innerText(), passage);
      await page.keyboard.press('Escape');
      await dlg.waitFor({ state: 'detached' });
    }
  });

  test('an answer cites the page, slide or sheet, and the citation opens the passage', async () => {
    const questions = {
      pdf: 'When does the keeper ring the fog bell?',
      pptx: 'When do tide tables arrive with the mackerel?',
      xlsx: 'Who is the navigator?',
    };
    await page.getByRole('link', { name: 'Ask' }).click();
    await page.getByRole('heading', { name: 'Ask', level: 1 }).waitFor();
    for (const [key, , where, section, passage] of cases) {
      const doc = docs[key];
      await page.getByRole('button', { name: 'New conversation' }).click();
      await page.locator('#ask-question').fill(questions[key]);
      await page.locator('#ask-question').press('Enter');
      const turn = page.locator('.turn', { hasText: questions[key] }).last();
      await turn.locator('ol.sources').waitFor(); // listed when the answer has ended
      assert.match(await turn.locator('.answer-text').innerText(), passage);
      const cite = turn.locator('button.cite').first();
      const label = `Source 1: ${doc.title}${section ? `, ${section}` : ''}, ${where}`;
      assert.equal(await cite.getAttribute('aria-label'), label);
      assert.equal(await turn.locator('ol.sources button').first().innerText(), `${doc.title}${section ? ` § ${section}` : ''}, ${where}`);
      await cite.click();
      const dlg = page.locator('dialog.citation[open]');
      await dlg.waitFor();
      assert.match(await dlg.locator('.citation-head p').innerText(), new RegExp(`^${escape(KB)} · ${escape(where)}( · |$)`));
      const mark = dlg.locator('mark.passage');
      await mark.waitFor();
      assert.match(await mark.innerText(), passage);
      await page.keyboard.press('Escape');
      await dlg.waitFor({ state: 'detached' });
    }
  });
});
