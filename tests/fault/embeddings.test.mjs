/* SPDX-License-Identifier: Apache-2.0 */
// Fault suite, the embeddings endpoint down: refusing connections, answering 503, answering
// 429 and hanging past ALMANAC_EMBEDDINGS_TIMEOUT_MS, each for longer than the whole retry
// schedule of a job. While it is away the worker spends no attempt (no retry, no dead
// letter, no document failed), its record in /health/workers and the documents say that
// it waits for the embeddings endpoint; once it is back every accepted document is ready
// with one chunk row and one vector per chunk.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { sleep } from '../lib/services.mjs';
import { waitFor } from '../lib/almanac.mjs';
import { sql } from '../lib/psql.mjs';
import { startFakeEmbeddings } from '../lib/fakeembeddings.mjs';
import { startSystem, RETRY_BASE_MS } from '../lib/system.mjs';

const DIM = 16;
const MAX_ATTEMPTS = 2;
const EMBED_TIMEOUT_MS = 500;
const EMBED_RETRIES = 1;
// The longest a job could take to use up every attempt were the outage blamed on it: each
// attempt waits out each of its embeddings requests (hanging) and the client's backoff
// between them (under 400 ms), and the job's retry delay at most doubles from
// RETRY_BASE_MS per attempt.
const SCHEDULE_MS = MAX_ATTEMPTS * (EMBED_RETRIES + 1) * (EMBED_TIMEOUT_MS + 400) + RETRY_BASE_MS * 2 ** MAX_ATTEMPTS;
// Down for longer than that (about 6.5 s).
const OUTAGE_MS = SCHEDULE_MS + 2000;

describe('embeddings endpoint down (refused, 503, 429, hanging) longer than the retry schedule', () => {
  let sys;
  let emb;
  let worker;
  before(async () => {
    emb = await startFakeEmbeddings({ dim: DIM });
    sys = await startSystem({
      env: {
        ALMANAC_EMBEDDINGS_URL: emb.url,
        ALMANAC_EMBEDDINGS_MODEL: 'test-embed',
        ALMANAC_EMBEDDINGS_DIM: String(DIM),
        ALMANAC_EMBEDDINGS_TIMEOUT_MS: String(EMBED_TIMEOUT_MS),
        ALMANAC_EMBEDDINGS_RETRIES: String(EMBED_RETRIES),
        ALMANAC_JOB_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
        ALMANAC_READY_TIMEOUT_MS: '1000',
      },
    });
    worker = await sys.worker();
    await sys.beat();
  });
  after(async () => {
    await sys?.stop();
    await emb?.close();
  });

  /** Asserts that nothing went to the outage: no failure, no retry, no dead letter. */
  const assertNoAttemptSpent = async (ids) => {
    const list = ids.join(',');
    assert.equal(sql(sys.pg, `SELECT count(*) FROM documents WHERE id IN (${list}) AND status = 'failed'`), '0', 'no document failed');
    // 1 while a job runs, given back (0) when it is put back.
    assert.ok(Number(sql(sys.pg, `SELECT coalesce(max(attempts), 0) FROM documents WHERE id IN (${list})`)) <= 1, 'no attempt spent');
    assert.deepEqual(worker.events('job.retry'), [], 'no retry');
    assert.deepEqual(worker.events('job.dead'), [], 'no dead letter');
    const qs = await sys.queues();
    assert.equal(qs.ingest.dead + qs.ingest_bulk.dead, 0, 'the dead-letter lists stay empty');
  };

  const outage = async (mode, opts, says) => {
    await emb.setMode(mode, opts);
    const t0 = Date.now();
    const ids = await sys.uploadMany(4, `emb-${mode}-${opts.status ?? ''}`);
    await waitFor(
      async () => {
        const rec = (await sys.workers()).find((w) => w.pid === worker.pid);
        return rec && Array.isArray(rec.waiting_for) && rec.waiting_for.some((x) => says.test(x));
      },
      { timeoutMs: 20000, what: `the worker record says it waits for the embeddings endpoint (${says})` },
    );
    await waitFor(
      () => [...sys.status(ids).values()].some((d) => d.status === 'pending' && says.test((d.error ?? '').replace(/^waiting for /, ''))),
      { timeoutMs: 20000, what: `a document says it waits for the embeddings endpoint (${says})` },
    );
    while (Date.now() - t0 < OUTAGE_MS) {
      await assertNoAttemptSpent(ids);
      await sleep(500);
    }
    await assertNoAttemptSpent(ids);
    const waited = Date.now() - t0;
    await emb.setMode('ok');
    const t1 = Date.now();
    await sys.waitReady(ids);
    sys.assertIndexed(ids);
    // Each document ran to the end once: the outage's runs were given back.
    assert.equal(sql(sys.pg, `SELECT max(attempts) FROM documents WHERE id IN (${ids.join(',')})`), '1');
    await waitFor(async () => !((await sys.workers()).find((w) => w.pid === worker.pid)?.waiting_for ?? []).length, {
      timeoutMs: 10000,
      what: 'the worker record waits for nothing',
    });
    sys.assertNoCrash();
    return { waited, readyAfter: Date.now() - t1 };
  };

  test('refusing connections', async () => {
    const first = await sys.uploadMany(2, 'emb-first');
    await sys.waitReady(first);
    const t = await outage('down', {}, /^embeddings: connection refused/);
    console.log(`embeddings refused for ${t.waited} ms; ready ${t.readyAfter} ms after it came back`);
  });

  test('answering 503', async () => {
    const t = await outage('error', { status: 503 }, /^embeddings: HTTP 503/);
    console.log(`embeddings 503 for ${t.waited} ms; ready ${t.readyAfter} ms after`);
  });

  test('answering 429', async () => {
    const t = await outage('ratelimit', { retryAfter: 1 }, /^embeddings: rate limited/);
    console.log(`embeddings 429 for ${t.waited} ms; ready ${t.readyAfter} ms after`);
  });

  test(`hanging past ALMANAC_EMBEDDINGS_TIMEOUT_MS (${EMBED_TIMEOUT_MS} ms)`, async () => {
    const t = await outage('hang', {}, /^embeddings: timeout/);
    console.log(`embeddings hanging for ${t.waited} ms; ready ${t.readyAfter} ms after`);
  });
});
