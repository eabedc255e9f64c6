/* SPDX-License-Identifier: Apache-2.0 */
// Fault suite, Redis and the queue (issue cases 5 to 8): Redis restarted empty with jobs
// queued, Redis refusing writes (maxmemory with noeviction), parallel wrong passwords, a
// reprocess storm, and one read delivering a job of each queue. What must hold: lost jobs
// are queued again within about a minute, sign-in limits are counted before the password
// is checked, a refused write is treated like Redis down (logged, /ready warns), one job
// per document at a time, and every delivered entry runs.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { redisCli, sleep } from '../lib/services.mjs';
import { httpRequest, waitFor } from '../lib/almanac.mjs';
import { sql } from '../lib/psql.mjs';
import { startSystem, COLLECTION } from '../lib/system.mjs';

const writes = (r) => r.json?.checks?.['redis_writes:responseTime']?.[0];
const jobsOf = (sys, stream) =>
  redisCli(sys.redis.port, 'XRANGE', `almanac:queue:${stream}`, '-', '+')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));

describe('Redis restarted empty with jobs queued', () => {
  let sys;
  before(async () => {
    sys = await startSystem();
    await sys.beat();
  });
  after(async () => {
    await sys?.stop();
  });

  test('the beat sees the lost queue and the documents end ready within about a minute', async () => {
    // No worker yet: the jobs wait in the stream, and are lost with it.
    const ids = await sys.uploadMany(6, 'lost-queue');
    await waitFor(() => jobsOf(sys, 'ingest').length === ids.length, { timeoutMs: 10000, what: 'jobs relayed' });
    // The beat has seen this Redis (its epoch is remembered): a running system.
    await waitFor(() => sql(sys.pg, 'SELECT count(*) FROM queue_epoch') === '1', { timeoutMs: 20000, what: 'queue epoch remembered' });
    const beat = sys.procs.find((p) => p.proc.spawnargs.includes('beat'));
    assert.equal(beat.events('beat.queue_lost').length, 0, 'a new system has nothing to repair');
    await sys.redis.kill9(); // no persistence: it comes back empty
    await sys.redis.start();
    assert.equal(jobsOf(sys, 'ingest').length, 0, 'the jobs are gone');
    const t0 = Date.now();
    const worker = await sys.worker();
    await sys.waitReady(ids, 60000);
    const took = Date.now() - t0;
    sys.assertIndexed(ids);
    assert.ok(took < 60000, `repaired in ${took} ms`);
    // Exactly once in effect: one chunk set and one vector per chunk each (assertIndexed),
    // and nothing left over in the queue.
    await waitFor(async () => {
      const q = (await sys.queues()).ingest;
      return q.length === 0 && q.pending === 0 && q.delayed === 0;
    }, { timeoutMs: 20000, what: 'queue drained' });
    assert.equal(beat.events('beat.queue_lost').length, 1);
    assert.equal(worker.events('job.dead').length, 0);
    console.log(`# lost queue repaired: documents ready ${took} ms after Redis came back empty`);
  });
});

describe('sign-in limits and the queue under pressure', () => {
  let sys;
  let worker;
  before(async () => {
    sys = await startSystem({ env: { ALMANAC_LOGIN_MAX_ATTEMPTS: '5', ALMANAC_JOB_CLAIM_IDLE_MS: '60000' } });
    worker = await sys.worker({ ALMANAC_WORKER_CONCURRENCY: '1' });
  });
  after(async () => {
    await sys?.stop();
  });

  test('40 parallel wrong passwords: at most the limit are checked, the rest get 429', async () => {
    const calls = [];
    for (let i = 0; i < 40; i++) calls.push(sys.c.call('POST', '/api/v1/auth/login', { json: { email: 'alice@example.org', password: `wrong-${i}` }, timeoutMs: 30000 }));
    const statuses = (await Promise.all(calls)).map((r) => r.status);
    const verified = statuses.filter((s) => s === 401).length;
    assert.ok(verified <= 5, `passwords verified: ${verified} (${statuses})`);
    assert.equal(statuses.filter((s) => s === 429).length, 40 - verified);
    redisCli(sys.redis.port, 'EVAL', "for _, k in ipairs(redis.call('KEYS', 'almanac:ratelimit:*')) do redis.call('DEL', k) end", '0');
  });

  test('Redis refusing writes: sign-ins fail open as when it is down, logged, /ready warns', async () => {
    redisCli(sys.redis.port, 'CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    redisCli(sys.redis.port, 'CONFIG', 'SET', 'maxmemory', '1');
    try {
      const statuses = [];
      for (let i = 0; i < 8; i++) statuses.push((await sys.c.call('POST', '/api/v1/auth/login', { json: { email: 'alice@example.org', password: 'wrong' } })).status);
      assert.deepEqual([...new Set(statuses)], [401], `${statuses}`);
      const logged = sys.api.logLines().filter((l) => l.event === 'auth.ratelimit_unavailable');
      assert.ok(logged.length >= 8, `logged: ${logged.length}`);
      assert.match(logged.at(-1).detail, /OOM|refused/i);
      const ready = await waitFor(async () => {
        const r = await httpRequest(`${sys.api.url}/ready`);
        return r.json?.status === 'warn' && writes(r)?.status === 'warn' ? r : null;
      }, { timeoutMs: 10000, what: '/ready warns' });
      assert.equal(ready.status, 200);
      assert.match(writes(ready).output, /refuses writes/);
    } finally {
      redisCli(sys.redis.port, 'CONFIG', 'SET', 'maxmemory', '0');
    }
    // The api's other checks may warn (no worker has created the collection here).
    await waitFor(async () => writes(await httpRequest(`${sys.api.url}/ready`))?.status === 'pass', { timeoutMs: 10000, what: '/ready redis_writes passes again' });
  });

  test('100 reprocess calls of one document queue one job; another user is served meanwhile', async () => {
    const [doc] = await sys.uploadMany(1, 'storm', 40);
    await sys.waitReady([doc]);
    const before = jobsOf(sys, 'ingest').length;
    const calls = [];
    for (let i = 0; i < 100; i++) calls.push(sys.c.call('POST', `/api/v1/documents/${doc}/reprocess`, { token: sys.alice }));
    const replies = await Promise.all(calls);
    assert.ok(replies.every((r) => r.status === 202), `${replies.map((r) => r.status)}`);
    const queued = Number(sql(sys.pg, `SELECT count(*) FROM outbox WHERE payload->>'document_id' = '${doc}'`)) + jobsOf(sys, 'ingest').filter((j) => j.payload.document_id === doc).length;
    assert.ok(queued <= 1 + before, `jobs for the document: ${queued}`);
    const bobKb = (await sys.c.createKb(sys.admin, 'other user')).id;
    const r = await sys.c.upload(sys.admin, bobKb, 'one-line.txt', 'one line from another user');
    assert.equal(r.status, 202);
    const t0 = Date.now();
    await sys.waitReady([r.json.id, doc], 30000);
    assert.ok(Date.now() - t0 < 10000, `the other user's upload waited ${Date.now() - t0} ms`);
    sys.assertIndexed([doc, r.json.id]);
  });

  test("one user's backlog of 1,000 jobs delays another user's single upload by seconds at most", async () => {
    const backlog = [];
    let next = 0;
    const uploader = async () => {
      while (next < 1000) {
        const i = next++;
        const r = await sys.c.upload(sys.alice, sys.kb, `backlog-${i}.txt`, `backlog document ${i}: ${'pump valve gasket '.repeat(20)}`);
        assert.equal(r.status, 202, r.body);
        backlog.push(r.json.id);
      }
    };
    await Promise.all(Array.from({ length: 8 }, uploader));
    const waiting = Number(sql(sys.pg, `SELECT count(*) FROM documents WHERE id IN (${backlog.join(',')}) AND status <> 'ready'`));
    assert.ok(waiting > 500, `backlog still waiting when the other user uploads: ${waiting}`);
    const kb = (await sys.c.createKb(sys.admin, 'another user')).id;
    const r = await sys.c.upload(sys.admin, kb, 'single.txt', 'a single upload of another user');
    assert.equal(r.status, 202, r.body);
    const t0 = Date.now();
    await sys.waitReady([r.json.id], 30000);
    const waited = Date.now() - t0;
    const still = Number(sql(sys.pg, `SELECT count(*) FROM documents WHERE id IN (${backlog.join(',')}) AND status <> 'ready'`));
    console.log(`# other user's upload ready in ${waited} ms with ${still} of the backlog still waiting`);
    assert.ok(waited < 5000, `waited ${waited} ms`);
    assert.ok(still > 0, 'it went ahead of the backlog');
    await sys.waitReady(backlog, 300000);
  });

  test('a read that delivers a job of each queue runs both at once (no wait for the claim)', async () => {
    await worker.stop();
    const [keep, drop] = await sys.uploadMany(2, 'two-queues');
    const del = await sys.c.call('DELETE', `/api/v1/documents/${drop}`, { token: sys.alice });
    assert.equal(del.status, 200, del.body);
    await waitFor(() => jobsOf(sys, 'maintenance').length >= 1 && jobsOf(sys, 'ingest').length >= 1, { timeoutMs: 10000, what: 'a job in each queue' });
    worker = await sys.worker({ ALMANAC_WORKER_CONCURRENCY: '1' });
    await sys.waitReady([keep], 20000);
    // The purge ran well before the 60 s claim idle time would have handed it back.
    await waitFor(async () => (await sys.queues()).maintenance.length === 0, { timeoutMs: 10000, what: 'maintenance job done' });
    assert.equal(worker.events('job.reclaimed').length, 0);
    assert.equal(sys.qdrant.collections.pointsOf(COLLECTION, drop).length, 0);
    await sleep(100);
  });
});
