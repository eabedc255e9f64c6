/* SPDX-License-Identifier: Apache-2.0 */
// Fault suite, dependency outages (issue cases 3 and 4): Qdrant down for 30 s and back
// empty (its collection gone), PostgreSQL down for a while and started again. While a
// dependency is away the worker takes no job, puts back the one it had without spending
// an attempt and says what it waits for; afterwards every accepted document is ready with
// one vector per chunk, the collection is created again, and nothing failed.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { sleep } from '../lib/services.mjs';
import { httpRequest, waitFor } from '../lib/almanac.mjs';
import { sql } from '../lib/psql.mjs';
import { startSystem, COLLECTION } from '../lib/system.mjs';

describe('Qdrant down for 30 s, back empty', () => {
  let sys;
  let worker;
  before(async () => {
    sys = await startSystem({ env: { ALMANAC_JOB_MAX_ATTEMPTS: '3', ALMANAC_READY_TIMEOUT_MS: '1000' } });
    worker = await sys.worker();
    await sys.beat();
  });
  after(async () => {
    await sys?.stop();
  });

  test('uploads during the outage end ready, no attempt spent, the collection is created again', async () => {
    const before = await sys.uploadMany(3, 'before-outage');
    await sys.waitReady(before);
    await sys.qdrant.setMode('down');
    sys.qdrant.collections.clear(); // it comes back without its data
    const during = await sys.uploadMany(5, 'during-outage');
    // The worker says what it waits for: its record and the documents.
    await waitFor(
      async () => {
        const rec = (await sys.workers()).find((w) => w.pid === worker.pid);
        return rec && Array.isArray(rec.waiting_for) && rec.waiting_for.some((x) => /^qdrant/.test(x));
      },
      { timeoutMs: 20000, what: 'the worker record says it waits for qdrant' },
    );
    await waitFor(() => sql(sys.pg, `SELECT count(*) FROM documents WHERE id IN (${during.join(',')}) AND error LIKE 'waiting for qdrant%'`) !== '0', {
      timeoutMs: 20000,
      what: 'a document says it waits for qdrant',
    });
    assert.equal((await httpRequest(`${worker.probeUrl}/ready`)).status, 503, 'worker not ready while qdrant is down');
    await sleep(30000);
    assert.equal(sql(sys.pg, `SELECT count(*) FROM documents WHERE id IN (${during.join(',')}) AND status = 'failed'`), '0');
    await sys.qdrant.setMode('ok');
    await sys.waitReady(during);
    assert.ok(sys.qdrant.collections.has(COLLECTION), 'collection created again');
    sys.assertIndexed(during);
    // No attempt went to the outage: each document was processed once to the end.
    assert.equal(sql(sys.pg, `SELECT max(attempts) FROM documents WHERE id IN (${during.join(',')})`), '1');
    assert.equal(worker.events('job.dead').length, 0);
    // The vectors of the documents from before are gone with Qdrant's data: the beat's
    // reconciliation finds them; here it is enough that search still answers.
    const r = await sys.c.search(sys.alice, { query: 'valve pressure logbook' });
    assert.equal(r.status, 200, r.body);
    sys.assertNoCrash();
  });
});

describe('PostgreSQL down for 8 s (restarted)', () => {
  let sys;
  before(async () => {
    sys = await startSystem({ env: { ALMANAC_JOB_MAX_ATTEMPTS: '2' } });
    await sys.worker();
    await sys.beat();
  });
  after(async () => {
    await sys?.stop();
  });

  test('jobs in flight are put back, nothing fails, every document ends ready', async () => {
    const ids = await sys.uploadMany(12, 'pg-kill', 30);
    await waitFor(() => sql(sys.pg, `SELECT count(*) FROM documents WHERE status = 'ready'`) !== '0', { timeoutMs: 30000, what: 'first ready' });
    // A fast shutdown: the test server runs with synchronous_commit off, so kill -9 would
    // lose the last commits, which no client can guard against.
    await sys.pg.stop();
    await sleep(8000);
    await sys.pg.start();
    await sys.waitReady(ids);
    sys.assertIndexed(ids);
    assert.equal(sql(sys.pg, `SELECT count(*) FROM documents WHERE status = 'failed'`), '0');
    sys.assertNoCrash();
  });
});
