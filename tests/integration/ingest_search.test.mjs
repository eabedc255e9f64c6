/* SPDX-License-Identifier: Apache-2.0 */
// Integration tests of ingestion and search: the real `almanac api` and `almanac worker`
// against a real PostgreSQL and Redis, the Qdrant stand-in (which checks every request
// against Qdrant's OpenAPI contract) and the embeddings stand-in.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import { waitFor } from '../lib/almanac.mjs';
import { startFakeEmbeddings } from '../lib/fakeembeddings.mjs';
import { startStack } from '../lib/stack.mjs';
import { cpSlice } from '../lib/apiclient.mjs';
import { sql, sqlRows } from '../lib/psql.mjs';

const COLLECTION = 'almanac_chunks';
const SEARCH_TIMEOUT_MS = 1500;
const SLACK_MS = 1000;
// The ASan build is several times slower: generous waits for ingestion.
const READY_TIMEOUT_MS = 120000;

/** Almanac's point id: uuid5(564302c8-166a-578c-813d-79c130c979be, "<document>:<chunk>"). */
function pointId(documentId, chunkIndex) {
  const ns = Buffer.from('564302c8166a578c813d79c130c979be', 'hex');
  const h = crypto.createHash('sha1').update(ns).update(`${documentId}:${chunkIndex}`).digest();
  h[6] = (h[6] & 0x0f) | 0x50;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

// ---------------------------------------------------------------- documents

const PLAIN = [
  'Expense reports are filed through the finance portal within thirty days of the purchase.',
  'Receipts must be attached as photos or scans; a missing receipt needs a signed note from your manager.',
  '',
  'Meals during travel are reimbursed up to 45 € per day — café, déjeuner and dinner included. ' +
    'Alcohol is never reimbursed. Tips are fine up to fifteen percent. 🍽️ Keep the itemised bill.',
  '',
  'Mileage for private cars is paid at the standard rate per kilometre. Parking and tolls are ' +
    'reimbursed at cost when the trip was approved beforehand. Taxis are fine after 22:00 or with luggage.',
  '',
  'Corporate cards are personal and must not be shared. Lost cards are reported to the card hotline ' +
    'at once; the finance team blocks the card and orders a replacement within five working days.',
].join('\n');

const MARKDOWN = `# Onboarding guide

Welcome to the company. This guide covers your first week: accounts, equipment and people.

## Accounts

Your laptop arrives with single sign-on already configured. Choose a passphrase of at least
sixteen characters on the first login; the identity team enforces **hardware security keys**
for every administrator account.

- request access to the wiki through the service desk
- join the #general and #help channels

## Equipment

The standard kit is a laptop, a monitor and a headset. Extra monitors or ergonomic chairs are
ordered through the facilities form; delivery takes about ten days.

### Returning equipment

When you leave, the courier collects everything from your home address. Wipe nothing yourself:
the IT team erases disks with a certified tool.

## People

Your buddy meets you every morning of the first week. Lunch with the team is on Thursday.
`;

const HTML = `<!doctype html>
<html><head><title>Incident handbook</title>
<style>body { font-family: sans-serif; }</style>
<script>var tracking = "do not index this script text";</script></head>
<body>
<h1>Incident handbook</h1>
<p>An incident is any unplanned interruption of a customer-facing service. The on-call engineer
declares it in the <b>#incidents</b> channel &amp; opens a timeline document.</p>
<h2>Severity levels</h2>
<p>SEV1 means a complete outage for all customers; SEV2 a major feature is broken; SEV3 a
degradation with a workaround. Pager alerts for SEV1 wake up the secondary on-call too.</p>
<ul><li>SEV1: status page update within 15 minutes</li><li>SEV2: within one hour</li></ul>
<h2>Postmortems</h2>
<p>Every SEV1 and SEV2 gets a blameless postmortem within five business days. The facilitator
is never the person who triggered the incident. Action items are tracked as tickets.</p>
</body></html>
`;

// ---------------------------------------------------------------- helpers

function assertChunks(pg, doc, { sections }) {
  const text = sql(pg, `SELECT text FROM documents WHERE id = ${doc.id}`);
  assert.ok(text.length > 0, 'documents.text holds the extracted text');
  const rows = sqlRows(
    pg,
    `SELECT chunk_index, start_offset, end_offset, section, text, knowledge_base_id
       FROM chunks WHERE document_id = ${doc.id} ORDER BY chunk_index`,
  );
  assert.equal(rows.length, doc.chunk_count, 'one row per chunk');
  rows.forEach((r, i) => {
    assert.equal(r.chunk_index, i, 'contiguous chunk indexes from 0');
    assert.equal(r.knowledge_base_id, doc.knowledge_base_id);
    assert.ok(r.end_offset > r.start_offset, `chunk ${i} not empty`);
    assert.equal(cpSlice(text, r.start_offset, r.end_offset), r.text, `chunk ${i}: offsets slice documents.text`);
    if (i > 0) assert.ok(r.start_offset >= rows[i - 1].start_offset, 'chunks in order');
  });
  const seen = new Set(rows.map((r) => r.section));
  for (const s of sections) assert.ok(seen.has(s), `a chunk in section ${JSON.stringify(s)} (have ${[...seen]})`);
  return { text, rows };
}

function assertPoints(qdrant, doc) {
  const pts = qdrant.collections.pointsOf(COLLECTION, doc.id);
  assert.equal(pts.length, doc.chunk_count, `document ${doc.id}: one point per chunk`);
  pts.forEach((p, i) => {
    assert.equal(p.payload.chunk_index, i);
    assert.equal(p.payload.document_id, doc.id);
    assert.equal(p.payload.knowledge_base_id, doc.knowledge_base_id);
    assert.equal(p.id, pointId(doc.id, i), 'deterministic point id');
  });
  return pts;
}

function assertNoInvalid(qdrant) {
  assert.equal(qdrant.invalidRequests, 0, `requests against the Qdrant contract: ${JSON.stringify(qdrant.invalid)}`);
  assert.equal(qdrant.invalidReplies, 0, 'stand-in replies');
}

function assertError(r, status, code) {
  assert.equal(r.status, status, r.body);
  assert.equal(r.json?.error?.code, code, r.body);
}

// ---------------------------------------------------------------- with Qdrant

describe('ingestion and hybrid search with the Qdrant stand-in', () => {
  let s, c, alice, bob, kb, kb2, bobKb;
  const docs = {};

  before(async () => {
    s = await startStack({
      users: ['alice@example.org', 'bob@example.org'],
      env: { ALMANAC_CHUNK_SIZE: '300', ALMANAC_CHUNK_OVERLAP: '60', ALMANAC_SEARCH_TIMEOUT_MS: String(SEARCH_TIMEOUT_MS) },
    });
    c = s.c;
    alice = await c.login('alice@example.org');
    bob = await c.login('bob@example.org');
    kb = await c.createKb(alice, 'handbook');
    kb2 = await c.createKb(alice, 'other');
    bobKb = await c.createKb(bob, 'bob private');
    const up = async (k, name, data, type, title) => {
      const r = await c.upload(alice, k.id, name, data, { type, title });
      assert.equal(r.status, 202, r.body);
      return r.json.id;
    };
    const ids = {
      plain: await up(kb, 'expenses.txt', PLAIN, 'text/plain', 'Expenses'),
      md: await up(kb, 'onboarding.md', MARKDOWN, 'text/markdown', 'Onboarding'),
      html: await up(kb, 'incidents.html', HTML, 'text/html', 'Incidents'),
      // a look-alike in another knowledge base, to check that filters hold
      other: await up(kb2, 'expenses-old.txt', PLAIN.replace('thirty', 'sixty'), 'text/plain', 'Old expenses'),
    };
    const b = await c.upload(bob, bobKb.id, 'bob.txt', 'Bob keeps his expense notes here: meals and receipts.', {});
    assert.equal(b.status, 202, b.body);
    ids.bob = b.json.id;
    const ready = await c.waitReady(alice, [ids.plain, ids.md, ids.html, ids.other], { timeoutMs: READY_TIMEOUT_MS });
    await c.waitReady(bob, [ids.bob], { timeoutMs: READY_TIMEOUT_MS });
    for (const [k, id] of Object.entries(ids)) docs[k] = ready.get(id) ?? (await c.document(bob, id));
  });

  after(async () => {
    await s?.stop();
  });

  test('each document is ready with chunks whose offsets slice documents.text', () => {
    for (const d of Object.values(docs)) {
      assert.equal(d.status, 'ready');
      assert.ok(d.chunk_count > 0, `document ${d.id} has chunks`);
      assert.equal(d.error, null);
    }
    const p = assertChunks(s.pg, docs.plain, { sections: [null] });
    assert.ok(docs.plain.chunk_count > 1, 'the plain text is longer than one chunk');
    assert.ok(p.rows.every((r) => r.section === null), 'plain text has no sections');
    assert.equal(p.text, PLAIN, 'plain text is kept as is');
    // the non-ASCII part: offsets count code points, not bytes or UTF-16 units
    assert.ok(p.rows.some((r) => r.text.includes('🍽️')));

    const m = assertChunks(s.pg, docs.md, { sections: ['Onboarding guide', 'Accounts', 'Equipment', 'Returning equipment', 'People'] });
    assert.ok(!m.text.includes('**'), 'markdown markup dropped');
    assert.ok(!m.text.includes('## '), 'heading markers dropped');
    const ret = m.rows.find((r) => r.text.includes('courier'));
    assert.equal(ret.section, 'Returning equipment', 'innermost section');
    const people = m.rows.find((r) => r.text.includes('buddy'));
    assert.equal(people.section, 'People', 'a section ends at the next heading of the same level');

    const h = assertChunks(s.pg, docs.html, { sections: ['Incident handbook', 'Severity levels', 'Postmortems'] });
    assert.ok(!h.text.includes('<'), 'tags dropped');
    assert.ok(!h.text.includes('tracking'), 'scripts dropped');
    assert.ok(!h.text.includes('font-family'), 'styles dropped');
    assert.ok(h.text.includes('#incidents channel & opens'), 'entities decoded');
    assert.equal(h.rows.find((r) => r.text.includes('blameless')).section, 'Postmortems');
  });

  test(
    'GET /documents/{id}/content serves the extracted text that offsets refer to',
    async () => {
      const r = await c.call('GET', `/api/v1/documents/${docs.html.id}/content`, { token: alice });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.json.content, HTML, 'content is the upload');
      assert.equal(r.json.text, sql(s.pg, `SELECT text FROM documents WHERE id = ${docs.html.id}`));
    },
  );

  test('Qdrant holds one point per chunk under deterministic ids; reprocessing keeps them', async () => {
    for (const d of Object.values(docs)) assertPoints(s.qdrant, d);
    const total = Object.values(docs).reduce((n, d) => n + d.chunk_count, 0);
    assert.equal(s.qdrant.collections.count(COLLECTION), total, 'no other points');
    assert.equal(s.qdrant.collections.dim(COLLECTION), 384, 'hashing embedder dimension');
    const indexes = s.qdrant.collections.indexes(COLLECTION);
    assert.ok('knowledge_base_id' in indexes && 'document_id' in indexes, `payload indexes: ${JSON.stringify(indexes)}`);

    const before = assertPoints(s.qdrant, docs.md).map((p) => p.id);
    // processed_at in the API has whole seconds: compare PostgreSQL's own value
    const processedAt = () => sql(s.pg, `SELECT processed_at FROM documents WHERE id = ${docs.md.id}`);
    const processedBefore = processedAt();
    const r = await c.call('POST', `/api/v1/documents/${docs.md.id}/reprocess`, { token: alice });
    assert.equal(r.status, 202, r.body);
    assert.equal(r.json.status, 'pending');
    const again = await waitFor(
      async () => {
        const d = await c.document(alice, docs.md.id);
        return d.status === 'ready' && processedAt() !== processedBefore ? d : null;
      },
      { timeoutMs: READY_TIMEOUT_MS, what: 'reprocessed document ready' },
    );
    assert.equal(again.chunk_count, docs.md.chunk_count);
    assert.deepEqual(assertPoints(s.qdrant, again).map((p) => p.id), before, 'same ids');
    assert.equal(s.qdrant.collections.count(COLLECTION), total, 'no duplicates');
    assertChunks(s.pg, again, { sections: ['Accounts'] });
    assertNoInvalid(s.qdrant);
  });

  test('hybrid search finds the right document, with highlighted snippets', async () => {
    const cases = [
      ['how long does delivery of an extra monitor take', docs.md.id],
      ['what must the status page say during a complete outage', docs.html.id],
      ['are tips reimbursed on meals', docs.plain.id],
      ['who facilitates the postmortem', docs.html.id],
      ['security keys for administrators', docs.md.id],
    ];
    for (const [query, want] of cases) {
      const r = await c.search(alice, { query, knowledge_base_ids: [kb.id], limit: 5, mode: 'hybrid' });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.json.mode, 'hybrid');
      assert.equal(r.json.degraded, false, r.body);
      assert.equal(typeof r.json.took_ms, 'number');
      assert.ok(r.json.results.length > 0, `results for ${query}`);
      assert.equal(r.json.results[0].document_id, want, `${query}: top hit ${JSON.stringify(r.json.results[0])}`);
      const top = r.json.results[0];
      assert.match(top.snippet, /<mark>[^<]+<\/mark>/, 'snippet highlights matches');
      for (const k of ['knowledge_base_id', 'title', 'section', 'chunk_index', 'score', 'start', 'end', 'sources']) {
        assert.ok(k in top, `result field ${k}`);
      }
      assert.ok(Array.isArray(top.sources) && top.sources.length > 0);
      // start/end of a hit are its chunk's offsets
      const row = sqlRows(s.pg, `SELECT start_offset, end_offset FROM chunks WHERE document_id = ${top.document_id} AND chunk_index = ${top.chunk_index}`)[0];
      assert.deepEqual([top.start, top.end], [row.start_offset, row.end_offset]);
    }
    // a query both paths agree on is reported from both
    const both = await c.search(alice, { query: 'blameless postmortem action items', knowledge_base_ids: [kb.id] });
    assert.deepEqual(both.json.results[0].sources, ['keyword', 'vector']);
  });

  test('search answers only from the requested and permitted knowledge bases', async () => {
    for (const mode of ['hybrid', 'keyword', 'vector']) {
      let r = await c.search(alice, { query: 'expense receipts meals', knowledge_base_ids: [kb.id], mode, limit: 50 });
      assert.equal(r.status, 200, r.body);
      assert.ok(r.json.results.length > 0, `${mode}: results`);
      assert.ok(r.json.results.every((h) => h.knowledge_base_id === kb.id), `${mode}: only kb ${kb.id}`);
      r = await c.search(alice, { query: 'expense receipts meals', knowledge_base_ids: [kb2.id], mode, limit: 50 });
      assert.ok(r.json.results.length > 0 && r.json.results.every((h) => h.knowledge_base_id === kb2.id), `${mode}: only kb ${kb2.id}`);
      // without knowledge_base_ids: every one of alice's, never bob's
      r = await c.search(alice, { query: 'expense receipts meals notes', mode, limit: 50 });
      assert.ok(r.json.results.every((h) => h.knowledge_base_id !== bobKb.id), `${mode}: never bob's`);
    }
    assertError(await c.search(alice, { query: 'expense', knowledge_base_ids: [bobKb.id] }), 404, 'not_found');
    assertError(await c.search(alice, { query: 'expense', knowledge_base_ids: [kb.id, bobKb.id] }), 404, 'not_found');
    assertError(await c.search(alice, { query: 'expense', knowledge_base_ids: [999999] }), 404, 'not_found');
    assertError(await c.call('POST', '/api/v1/search', { json: { query: 'expense' } }), 401, 'unauthorized');
  });

  test('invalid queries and limits are refused with 422', async () => {
    const ask = (body) => c.search(alice, { knowledge_base_ids: [kb.id], ...body });
    assertError(await ask({ query: '' }), 422, 'unprocessable');
    assertError(await ask({ query: '   \n\t' }), 422, 'unprocessable');
    assertError(await ask({}), 422, 'unprocessable');
    assertError(await ask({ query: 'x'.repeat(1001) }), 422, 'unprocessable');
    assertError(await ask({ query: 'é'.repeat(500) + 'x' }), 422, 'unprocessable'); // 1001 bytes
    assert.equal((await ask({ query: 'meal '.repeat(200) })).status, 200, 'exactly 1000 bytes is fine');
    assertError(await ask({ query: 'meals', limit: 0 }), 422, 'unprocessable');
    assertError(await ask({ query: 'meals', limit: 51 }), 422, 'unprocessable');
    assertError(await ask({ query: 'meals', limit: '5' }), 422, 'unprocessable');
    assertError(await ask({ query: 'meals', mode: 'semantic' }), 422, 'unprocessable');
    const r = await ask({ query: 'meals', limit: 50 });
    assert.equal(r.status, 200);
    assert.ok(r.json.results.length <= 50);
    const one = await ask({ query: 'meals', limit: 1 });
    assert.equal(one.json.results.length, 1);
  });

  for (const fault of ['hang', 'down']) {
    test(`Qdrant '${fault}': search degrades to keyword results within the deadline`, async () => {
      await s.qdrant.setMode(fault);
      try {
        for (let i = 0; i < 2; i++) {
          const t0 = performance.now();
          const r = await c.search(alice, { query: 'severity levels outage', knowledge_base_ids: [kb.id], mode: 'hybrid' }, { timeoutMs: 20000 });
          const ms = performance.now() - t0;
          assert.equal(r.status, 200, r.body);
          assert.ok(ms <= SEARCH_TIMEOUT_MS + SLACK_MS, `answered in ${ms.toFixed(0)} ms`);
          assert.equal(r.json.degraded, true, r.body);
          assert.match(r.json.degraded_reason, /vector search/);
          assert.ok(r.json.results.length > 0, 'keyword results');
          assert.ok(r.json.results.every((h) => h.sources.join() === 'keyword'));
          assert.equal(r.json.results[0].document_id, docs.html.id);
        }
        // keyword mode does not touch Qdrant at all
        const k = await c.search(alice, { query: 'severity levels', knowledge_base_ids: [kb.id], mode: 'keyword' });
        assert.equal(k.json.degraded, false, k.body);
      } finally {
        await s.qdrant.setMode('ok');
      }
      const r = await waitFor(
        async () => {
          const x = await c.search(alice, { query: 'severity levels outage', knowledge_base_ids: [kb.id] });
          return x.status === 200 && x.json.degraded === false ? x : null;
        },
        { timeoutMs: 20000, what: 'search not degraded after Qdrant is back' },
      );
      assert.ok(r.json.results.some((h) => h.sources.includes('vector')));
    });
  }

  test('deleting a document, then a knowledge base, removes their points', async () => {
    await s.qdrant.setMode('ok');
    let r = await c.call('DELETE', `/api/v1/documents/${docs.plain.id}`, { token: alice });
    assert.equal(r.status, 200, r.body);
    assert.equal(sql(s.pg, `SELECT count(*) FROM chunks WHERE document_id = ${docs.plain.id}`), '0', 'chunks go at once');
    await waitFor(() => s.qdrant.collections.pointsOf(COLLECTION, docs.plain.id).length === 0, {
      timeoutMs: 60000,
      what: 'points of the deleted document gone',
    });
    assertPoints(s.qdrant, docs.md);
    r = await c.search(alice, { query: 'tips meals receipts', knowledge_base_ids: [kb.id] });
    assert.ok(r.json.results.every((h) => h.document_id !== docs.plain.id), 'deleted document never found');

    r = await c.call('DELETE', `/api/v1/knowledge-bases/${kb.id}`, { token: alice });
    assert.equal(r.status, 200, r.body);
    await waitFor(
      () => s.qdrant.collections.points(COLLECTION).every((p) => p.payload.knowledge_base_id !== kb.id),
      { timeoutMs: 60000, what: 'points of the deleted knowledge base gone' },
    );
    // the other knowledge bases keep theirs
    assertPoints(s.qdrant, docs.other);
    assertPoints(s.qdrant, docs.bob);
    assert.equal(s.qdrant.collections.count(COLLECTION), docs.other.chunk_count + docs.bob.chunk_count);
    assertNoInvalid(s.qdrant);
  });
});

// ---------------------------------------------------------------- without Qdrant

describe('without Qdrant (development)', () => {
  let s, c, tok, kb;

  before(async () => {
    s = await startStack({ qdrant: false });
    c = s.c;
    tok = await c.login('alice@example.org');
    kb = await c.createKb(tok, 'dev');
  });
  after(async () => {
    await s?.stop();
  });

  test('ingestion works without vectors; search is keyword only, degraded, with the reason', async () => {
    const r = await c.upload(tok, kb.id, 'incidents.html', HTML, { type: 'text/html' });
    assert.equal(r.status, 202, r.body);
    const d = (await c.waitReady(tok, [r.json.id], { timeoutMs: READY_TIMEOUT_MS })).get(r.json.id);
    assert.ok(d.chunk_count > 0);
    assertChunks(s.pg, d, { sections: ['Severity levels'] });
    for (const mode of ['hybrid', 'vector']) {
      const q = await c.search(tok, { query: 'blameless postmortem', knowledge_base_ids: [kb.id], mode });
      assert.equal(q.status, 200, q.body);
      assert.equal(q.json.degraded, true);
      assert.match(q.json.degraded_reason, /vector search is not configured/);
      if (mode === 'hybrid') {
        assert.ok(q.json.results.length > 0, 'keyword results');
        assert.equal(q.json.results[0].document_id, d.id);
      }
    }
    const k = await c.search(tok, { query: 'blameless postmortem', knowledge_base_ids: [kb.id], mode: 'keyword' });
    assert.equal(k.json.degraded, false, 'keyword mode asked for no vectors');
  });

  test('/ready says search is keyword only', async () => {
    const r = await c.call('GET', '/ready');
    assert.equal(r.status, 200, r.body);
    const notes = JSON.stringify([r.json.notes ?? [], r.json.checks?.['qdrant:responseTime'] ?? []]);
    assert.match(notes, /keyword (search )?only/i, r.body);
  });
});

// ---------------------------------------------------------------- embeddings stand-in

describe('with an OpenAI-compatible embeddings endpoint', () => {
  let s, c, tok, kb, emb;
  const DIM = 32;

  before(async () => {
    emb = await startFakeEmbeddings({ dim: DIM });
    s = await startStack({
      env: {
        ALMANAC_EMBEDDINGS_URL: emb.url,
        ALMANAC_EMBEDDINGS_DIM: String(DIM),
        ALMANAC_EMBEDDINGS_MODEL: 'test-embed',
        ALMANAC_EMBEDDINGS_RETRIES: '3',
        ALMANAC_EMBEDDINGS_BATCH: '4',
        ALMANAC_CHUNK_SIZE: '300',
        ALMANAC_CHUNK_OVERLAP: '60',
      },
    });
    c = s.c;
    tok = await c.login('alice@example.org');
    kb = await c.createKb(tok, 'semantic');
  });
  after(async () => {
    await s?.stop();
    await emb?.close();
  });

  test('ingestion embeds through the endpoint', async () => {
    const before = emb.count;
    const r = await c.upload(tok, kb.id, 'onboarding.md', MARKDOWN, { type: 'text/markdown' });
    assert.equal(r.status, 202, r.body);
    const d = (await c.waitReady(tok, [r.json.id], { timeoutMs: READY_TIMEOUT_MS })).get(r.json.id);
    const used = emb.requests.slice(before);
    assert.ok(used.length >= Math.ceil(d.chunk_count / 4), `batched requests: ${used.length} for ${d.chunk_count} chunks`);
    assert.equal(used.reduce((n, x) => n + x.inputs, 0), d.chunk_count, 'every chunk embedded once');
    assert.ok(used.every((x) => x.model === 'test-embed' && x.inputs <= 4));
    const pts = assertPoints(s.qdrant, d);
    assert.ok(pts.every((p) => p.vector.length === DIM));
    assert.equal(s.qdrant.collections.dim(COLLECTION), DIM);
    // queries are embedded too
    const n = emb.count;
    const q = await c.search(tok, { query: 'returning equipment', knowledge_base_ids: [kb.id], mode: 'vector' });
    assert.equal(q.status, 200, q.body);
    assert.equal(q.json.degraded, false, q.body);
    assert.equal(emb.count, n + 1);
    assert.ok(q.json.results.length > 0);
  });

  test('a burst of 429s is retried and the document still becomes ready', async () => {
    const before = emb.count;
    // more 429s than one job's retries: the embedder retries, then the job is retried
    emb.setMode('ratelimit', { count: 6, retryAfter: null });
    const r = await c.upload(tok, kb.id, 'incidents.html', HTML, { type: 'text/html' });
    assert.equal(r.status, 202, r.body);
    const d = (await c.waitReady(tok, [r.json.id], { timeoutMs: READY_TIMEOUT_MS })).get(r.json.id);
    assert.equal(emb.mode, 'ok', 'the burst was used up');
    assert.ok(emb.count - before >= 7, `requests: ${emb.count - before}`);
    assert.equal(d.error, null);
    assertPoints(s.qdrant, d);
    assertNoInvalid(s.qdrant);
    const rows = Number(sql(s.pg, `SELECT attempts FROM documents WHERE id = ${d.id}`));
    assert.ok(rows >= 1);
  });
});

