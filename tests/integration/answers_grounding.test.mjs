/* SPDX-License-Identifier: Apache-2.0 */
// Grounding check over the retrieval evaluation set (tests/eval): for every question, an
// answer from the answers API (the extractive chat stand-in as the model) is grounded
// when one of its citations is a passage of the question's document that holds the
// expected answer (the same hit rule as the evaluation). The grounded share must reach
// the share of questions for which hybrid search finds such a passage in its top 5: the
// relevance floor, the token budget and the citation mapping may not lose what search
// found.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { REPO_ROOT } from '../lib/almanac.mjs';
import { startFakeChat } from '../lib/fakechat.mjs';
import { startStack } from '../lib/stack.mjs';
import { cpSlice } from '../lib/apiclient.mjs';
import { sql } from '../lib/psql.mjs';
import { corpusDocument, locate } from '../eval/corpus.mjs';

const EVAL = path.join(REPO_ROOT, 'tests', 'eval');

function holds(r, want, texts) {
  if (r.document_id !== want.documentId) return false;
  if (cpSlice(texts.get(r.document_id), r.start, r.end).includes(want.passage)) return true;
  const overlap = Math.min(r.end, want.range.end) - Math.max(r.start, want.range.start);
  return overlap * 2 >= want.range.end - want.range.start;
}

test('cited passages hold the expected answer at least as often as hybrid search finds it at 5', { timeout: 600000 }, async () => {
  const spec = JSON.parse(fs.readFileSync(path.join(EVAL, 'questions.json'), 'utf8'));
  const chat = await startFakeChat();
  const s = await startStack({
    env: { ALMANAC_LOG_LEVEL: 'warn' },
    apiEnv: { ALMANAC_LLM_URL: chat.url, ALMANAC_ANSWER_RATE_LIMIT: '100000' },
  });
  try {
    const token = await s.c.login('alice@example.org');
    const kb = await s.c.createKb(token, 'evaluation corpus');
    const byTitle = new Map();
    const ids = [];
    for (const d of spec.documents) {
      const { data, type } = await corpusDocument(d);
      const r = await s.c.upload(token, kb.id, d.file, data, { type, title: d.title });
      assert.equal(r.status, 202, r.body);
      byTitle.set(d.title, r.json.id);
      ids.push(r.json.id);
    }
    await s.c.waitReady(token, ids, { timeoutMs: 300000 });
    const texts = new Map(ids.map((id) => [id, sql(s.pg, `SELECT text FROM documents WHERE id = ${id}`)]));
    let found = 0;
    let grounded = 0;
    const misses = [];
    for (const q of spec.questions) {
      const documentId = byTitle.get(q.title);
      const want = { ...q, documentId, range: locate(texts.get(documentId), q.passage) };
      assert.ok(want.range, `passage of "${q.q}" is in its document`);
      const search = await s.c.search(token, { query: q.q, mode: 'hybrid', limit: 5 });
      assert.equal(search.status, 200, search.body);
      if (search.json.results.some((r) => holds(r, want, texts))) found++;
      const a = await s.c.call('POST', '/api/v1/answers', { token, json: { question: q.q }, timeoutMs: 20000 });
      assert.equal(a.status, 200, a.body);
      assert.equal(a.json.answer_unavailable, null, a.body);
      if (a.json.citations.some((c) => holds(c, want, texts))) grounded++;
      else {
        const prompt = chat.requests.at(-1).body.messages.at(-1).content;
        misses.push(`${q.q} (${prompt.includes(q.passage.slice(0, 40)) ? 'in the prompt, not cited' : `not in the prompt; found at 5: ${search.json.results.some((r) => holds(r, want, texts))}; nothing relevant: ${a.json.nothing_relevant}`})`);
      }
    }
    const n = spec.questions.length;
    console.log(`grounding: hybrid@5 finds ${found}/${n} (${(found / n).toFixed(2)}), cited passages hold the answer for ${grounded}/${n} (${(grounded / n).toFixed(2)})`);
    if (misses.length) console.log(`not grounded: ${misses.join(' | ')}`);
    assert.ok(n >= 40);
    assert.ok(grounded >= found, `grounded ${grounded} < found by hybrid@5 ${found}`);
  } finally {
    await s.stop();
    await chat.close();
  }
});
