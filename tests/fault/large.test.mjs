/* SPDX-License-Identifier: Apache-2.0 */
// Fault suite, large documents (issue case 1's trigger): a document at the upload limit
// (ALMANAC_MAX_UPLOAD_BYTES, 20 MiB of text by default) ingests to ready within the job
// deadline, and so does its reprocess, while another user's small upload still goes
// through; the chunk rows match the vectors.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { sql } from '../lib/psql.mjs';
import { startSystem, COLLECTION } from '../lib/system.mjs';

const LIMIT = 20 * 1024 * 1024;
const JOB_TIMEOUT_MS = 240000;

/** Plain text of exactly bytes bytes: paragraphs of varied words. */
function bigText(bytes) {
  const words = ['valve', 'pressure', 'gasket', 'turbine', 'inspection', 'manifold', 'coolant', 'bearing', 'torque', 'relay', 'sensor', 'flange'];
  const parts = [];
  let len = 0;
  let i = 0;
  while (len < bytes) {
    const sentence = `Paragraph ${i}: the ${words[i % 12]} next to the ${words[(i * 7) % 12]} is checked at ${i % 24}:00 and logged as ${(i * 13) % 997}.\n\n`;
    parts.push(sentence);
    len += sentence.length;
    i++;
  }
  return parts.join('').slice(0, bytes);
}

describe('a document at the upload limit', () => {
  let sys;
  before(async () => {
    sys = await startSystem({ env: { ALMANAC_JOB_TIMEOUT_MS: String(JOB_TIMEOUT_MS), ALMANAC_WORKER_CONCURRENCY: '2' } });
    await sys.worker();
  });
  after(async () => {
    await sys?.stop();
  });

  test('ingests to ready, and so does its reprocess, within the job deadline', async () => {
    const r = await sys.c.upload(sys.alice, sys.kb, 'big.txt', bigText(LIMIT));
    assert.equal(r.status, 202, r.body);
    const id = r.json.id;
    const t0 = Date.now();
    await sys.waitReady([id], JOB_TIMEOUT_MS);
    const first = Date.now() - t0;
    const chunks = sys.assertIndexed([id]);
    assert.ok(chunks > 10000, `chunks: ${chunks}`);
    assert.equal(sql(sys.pg, `SELECT attempts FROM documents WHERE id = ${id}`), '1', 'ready at the first attempt');

    const again = await sys.c.call('POST', `/api/v1/documents/${id}/reprocess`, { token: sys.alice });
    assert.equal(again.status, 202, again.body);
    // While it runs, another upload of the same user still gets through the other thread.
    const small = await sys.upload('small-next-to-big', 2);
    const t1 = Date.now();
    await sys.waitReady([small], JOB_TIMEOUT_MS);
    await sys.waitReady([id], JOB_TIMEOUT_MS);
    const second = Date.now() - t1;
    assert.equal(sys.assertIndexed([id]), chunks, 'the reprocess wrote the same chunks');
    assert.equal(sys.qdrant.collections.count(COLLECTION), chunks + Number(sql(sys.pg, `SELECT chunk_count FROM documents WHERE id = ${small}`)));
    assert.equal(sql(sys.pg, `SELECT attempts FROM documents WHERE id = ${id}`), '1', 'the reprocess ready at its first attempt');
    console.log(`# 20 MiB document: ready in ${first} ms, reprocessed in ${second} ms, ${chunks} chunks`);
    sys.assertNoCrash();
  });
});


