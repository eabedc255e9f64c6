/* SPDX-License-Identifier: Apache-2.0 */
// Moving to another embedding model and dimension: `almanac reindex --to-collection`
// builds a new collection while search keeps answering from the current one, resumes
// when killed, switches only when every document has its points there, and never
// switches when the build fails. Real PostgreSQL, Redis, api and worker; the Qdrant
// stand-in (which refuses vectors of the wrong size) and the embeddings stand-in (whose
// model-b answers 24 dimensions, model-bad always fails).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startAlmanac, runAlmanac, waitFor } from '../lib/almanac.mjs';
import { startFakeEmbeddings } from '../lib/fakeembeddings.mjs';
import { startStack } from '../lib/stack.mjs';
import { sql } from '../lib/psql.mjs';

const OLD = 'almanac_chunks';
const NEW = 'chunks_model_b';

describe('switching to another embedding model', { timeout: 400000 }, () => {
  let s;
  let emb;
  let alice;
  let kb;
  const ids = [];

  before(async () => {
    emb = await startFakeEmbeddings({ dim: 16, dims: { 'model-b': 24, 'model-bad': 32 } });
    s = await startStack({
      env: {
        ALMANAC_EMBEDDINGS_URL: emb.url,
        ALMANAC_EMBEDDINGS_MODEL: 'model-a',
        ALMANAC_EMBEDDINGS_DIM: '16',
        ALMANAC_EMBEDDINGS_RETRIES: '0',
      },
    });
    alice = await s.c.login('alice@example.org');
    kb = (await s.c.createKb(alice, 'pumps')).id;
    for (let i = 0; i < 24; i++) {
      const r = await s.c.upload(alice, kb, `doc-${i}.md`, `# Station ${i}\n\nThe pump of station ${i} and its valves.\n\n## Log\n\nEntry ${i}: seals replaced.\n`, { type: 'text/markdown' });
      assert.equal(r.status, 202, r.body);
      ids.push(r.json.id);
    }
    await s.c.waitReady(alice, ids);
  });
  after(async () => {
    if (s) await s.stop();
    if (emb) await emb.close();
  });

  const chunks = () => Number(sql(s.pg, 'SELECT count(*) FROM chunks'));
  const states = () => sql(s.pg, "SELECT coalesce(string_agg(name || ':' || state, ',' ORDER BY state), '') FROM vector_collections");
  // A vector search, and the collection and embedding model it used.
  const vectorSearch = async () => {
    const q0 = s.qdrant.requests.length;
    const e0 = emb.requests.length;
    const r = await s.c.search(alice, { query: 'pump of station 7', mode: 'vector', limit: 3 });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.degraded, false, r.body);
    assert.ok(r.json.results.length > 0, r.body);
    const queried = s.qdrant.requests.slice(q0).filter((x) => x.path.endsWith('/points/query'));
    assert.equal(queried.length, 1);
    return { collection: queried[0].path.split('/')[2], model: emb.requests.slice(e0).at(-1).model };
  };

  test('bad usage is refused with exit 64', async () => {
    for (const args of [['--to-collection', NEW], ['--to-collection', 'a/b', '--dimension', '24'], ['--dimension', '24'], ['--to-collection', NEW, '--dimension', '4'], ['--to-collection', NEW, '--dimension', '24', '--kb', String(kb)], ['--abandon-build', '--dimension', '24']]) {
      const r = await runAlmanac(['reindex', ...args], { env: s.env });
      assert.equal(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^almanac: reindex: /, r.stderr);
    }
  });

  test('a collection that exists with another size, or the active one, is refused before anything is written', async () => {
    const r0 = await fetch(`${s.qdrant.url}/collections/taken`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ vectors: { size: 8, distance: 'Cosine' } }) });
    assert.equal(r0.status, 200);
    const r = await runAlmanac(['reindex', '--to-collection', 'taken', '--dimension', '24', '--model', 'model-b'], { env: s.env, timeoutMs: 60000 });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /taken/);
    assert.equal(states(), '');
    assert.equal(s.qdrant.collections.count('taken'), 0);
    // Nor is the active collection a target.
    const same = await runAlmanac(['reindex', '--to-collection', OLD, '--dimension', '24', '--model', 'model-b'], { env: s.env, timeoutMs: 60000 });
    assert.equal(same.code, 1, same.stderr);
    assert.match(same.stderr, /almanac_chunks is the active one/);
    assert.equal(states(), '');
    assert.equal(s.qdrant.collections.dim(OLD), 16);
  });

  test('a failing build never switches; search keeps the old collection; it can be abandoned', async () => {
    emb.failModel('model-bad');
    const r = await runAlmanac(['reindex', '--to-collection', 'chunks_bad', '--dimension', '32', '--model', 'model-bad', '--rate', '200'], { env: s.env, timeoutMs: 180000 });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /24 ready documents lack their points in chunks_bad.*not switched/);
    assert.equal(states(), 'chunks_bad:building');
    assert.equal(s.qdrant.collections.count('chunks_bad'), 0);
    // The documents themselves are fine: ready, with their vectors where search reads them.
    assert.equal(sql(s.pg, "SELECT count(*) FROM documents WHERE status <> 'ready'"), '0');
    assert.equal(s.qdrant.collections.count(OLD), chunks());
    assert.deepEqual(await vectorSearch(), { collection: OLD, model: 'model-a' });
    // Another build waits for this one to be finished or abandoned.
    const other = await runAlmanac(['reindex', '--to-collection', NEW, '--dimension', '24', '--model', 'model-b'], { env: s.env, timeoutMs: 60000 });
    assert.equal(other.code, 1, other.stderr);
    assert.match(other.stderr, /chunks_bad is being built/);
    const ab = await runAlmanac(['reindex', '--abandon-build'], { env: s.env });
    assert.equal(ab.code, 0, ab.stderr);
    assert.match(ab.stderr, /abandoned/);
    assert.equal(states(), '');
  });

  test('search answers from the old collection during the build; a killed build resumes and switches when complete', async () => {
    const p = await startAlmanac(['reindex', '--to-collection', NEW, '--dimension', '24', '--model', 'model-b', '--rate', '0.5'], { env: s.env, waitHealth: false });
    await waitFor(() => /started/.test(p.stderr()), { timeoutMs: 20000, what: 'build started' });
    await waitFor(() => s.qdrant.collections.count(NEW) > 0, { timeoutMs: 30000, what: 'points in the new collection' });
    // During the build: the new collection is filling, search still reads the old one.
    assert.equal(states(), `${NEW}:building`);
    assert.equal(s.qdrant.collections.dim(NEW), 24);
    assert.ok(s.qdrant.collections.count(NEW) < chunks());
    assert.deepEqual(await vectorSearch(), { collection: OLD, model: 'model-a' });
    // An upload during the build lands in both collections.
    const up = await s.c.upload(alice, kb, 'late.md', '# Late\n\nA document uploaded while the new collection fills.\n', { type: 'text/markdown' });
    assert.equal(up.status, 202, up.body);
    ids.push(up.json.id);
    await s.c.waitReady(alice, [up.json.id]);
    const lateChunks = Number(sql(s.pg, `SELECT chunk_count FROM documents WHERE id = ${up.json.id}`));
    assert.equal(s.qdrant.collections.pointsOf(OLD, up.json.id).length, lateChunks);
    assert.equal(s.qdrant.collections.pointsOf(NEW, up.json.id).length, lateChunks);

    p.signal('SIGKILL');
    await p.waitExit();
    assert.equal(states(), `${NEW}:building`, 'a killed build does not switch');
    assert.deepEqual(await vectorSearch(), { collection: OLD, model: 'model-a' });

    const again = await runAlmanac(['reindex', '--to-collection', NEW, '--dimension', '24', '--model', 'model-b', '--rate', '200'], { env: s.env, timeoutMs: 180000 });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /\(collection\): resumed; examined [1-9]\d*\/24/);
    assert.match(again.stderr, new RegExp(`search now uses collection ${NEW}`));
    assert.equal(JSON.parse(again.stdout.trim().split('\n').pop()).switched, NEW);

    // After the switch: points = chunks in the new collection, of the new size; search
    // embeds with the new model and reads the new collection; the old one is left.
    assert.equal(states(), `${NEW}:active`);
    assert.equal(s.qdrant.collections.count(NEW), chunks());
    assert.equal(s.qdrant.collections.dim(NEW), 24);
    assert.equal(s.qdrant.collections.count(OLD), chunks());
    assert.deepEqual(await vectorSearch(), { collection: NEW, model: 'model-b' });
    // Backups and `reindex --missing` follow the switch.
    const info = await runAlmanac(['snapshot', 'info'], { env: s.env });
    assert.equal(info.code, 0, info.stderr);
    assert.deepEqual(
      (({ collection, points, dim }) => ({ collection, points, dim }))(JSON.parse(info.stdout)),
      { collection: NEW, points: chunks(), dim: 24 },
    );
    const missing = await runAlmanac(['reindex', '--missing'], { env: s.env, timeoutMs: 60000 });
    assert.equal(missing.code, 0, missing.stderr);
    assert.equal(JSON.parse(missing.stdout.trim().split('\n').pop()).queued, 0);
    // New uploads go to the active collection only.
    const next = await s.c.upload(alice, kb, 'after.md', '# After\n\nUploaded after the switch.\n', { type: 'text/markdown' });
    await s.c.waitReady(alice, [next.json.id]);
    assert.equal(s.qdrant.collections.count(NEW), chunks());
    assert.equal(s.qdrant.collections.pointsOf(OLD, next.json.id).length, 0);
  });
});
