/* SPDX-License-Identifier: Apache-2.0 */
// Fault suite, the vector collection (issue case 4 and /ready): a fresh install has no
// collection; the worker creates it (its /ready check does, before any upload) while the
// api only warns; a collection of another dimension fails /ready of both, and a collection
// dropped under a running system is created again by the worker's next check.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { httpRequest, waitFor } from '../lib/almanac.mjs';
import { startSystem, COLLECTION } from '../lib/system.mjs';

const check = (r, name) => r.json?.checks?.[`${name}:responseTime`]?.[0];

async function ready(url) {
  const r = await httpRequest(`${url}/ready`, { timeoutMs: 5000 });
  return { ...r, c: check(r, 'qdrant_collection') };
}

describe('the Qdrant collection and /ready', () => {
  let sys;
  before(async () => {
    sys = await startSystem({ env: { ALMANAC_READY_CACHE_MS: '0' } });
  });
  after(async () => {
    await sys?.stop();
  });

  test('fresh install: the api warns, the worker creates the collection, both pass', async () => {
    assert.equal(sys.qdrant.collections.has(COLLECTION), false, 'no collection before any worker');
    const a = await ready(sys.api.url);
    assert.equal(a.status, 200, `a missing collection only warns on the api: ${a.body}`);
    assert.equal(a.json.status, 'warn', a.body);
    assert.equal(a.c.status, 'warn', a.body);
    assert.match(a.c.output, /almanac_chunks missing/, a.body);

    const worker = await sys.worker();
    const w = await waitFor(
      async () => {
        const r = await ready(worker.probeUrl);
        return r.status === 200 && r.c?.status === 'pass' ? r : null;
      },
      { timeoutMs: 20000, what: 'worker /ready passes with the collection' },
    );
    assert.equal(w.json.status, 'pass', w.body);
    assert.equal(sys.qdrant.collections.dim(COLLECTION), 384);
    assert.deepEqual(Object.keys(sys.qdrant.collections.indexes(COLLECTION)).sort(), ['document_id', 'knowledge_base_id']);
    assert.ok(worker.events('ready.collection_created').length >= 1);
    const a2 = await ready(sys.api.url);
    assert.equal(a2.status, 200, a2.body);
    assert.equal(a2.c.status, 'pass', a2.body);

    // Dropped under a running system: the worker's next check creates it again.
    sys.qdrant.collections.clear();
    await waitFor(
      async () => {
        await ready(worker.probeUrl);
        return sys.qdrant.collections.has(COLLECTION);
      },
      { timeoutMs: 20000, what: 'collection created again' },
    );

    // Another dimension: both fail, and say why.
    sys.qdrant.collections.clear();
    await worker.stop();
    const put = await httpRequest(`${sys.qdrant.url}/collections/${COLLECTION}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ vectors: { size: 8, distance: 'Cosine' } }),
    });
    assert.equal(put.status, 200, put.body);
    const a3 = await ready(sys.api.url);
    assert.equal(a3.status, 503, a3.body);
    assert.equal(a3.c.status, 'fail', a3.body);
    assert.match(a3.c.output, /dimension 8/, a3.body);
    const worker2 = await sys.worker({}, { waitHealthy: true });
    const w3 = await waitFor(
      async () => {
        const r = await ready(worker2.probeUrl);
        return r.c ? r : null;
      },
      { timeoutMs: 20000, what: 'worker /ready has the collection check' },
    );
    assert.equal(w3.status, 503, w3.body);
    assert.equal(w3.c.status, 'fail', w3.body);
    assert.match(w3.c.output, /dimension 8, the embedder produces 384/, w3.body);
    assert.equal(sys.qdrant.collections.dim(COLLECTION), 8, 'the worker never replaces a collection');
    assert.equal(sys.qdrant.invalidRequests, 0, JSON.stringify(sys.qdrant.invalid.slice(0, 3)));
    sys.assertNoCrash();
  });
});
