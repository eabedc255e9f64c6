/* SPDX-License-Identifier: Apache-2.0 */
// Integration tests of the job queue, the workers and the beat under failures: the real
// `almanac api`, `almanac worker` and `almanac beat` against a real PostgreSQL and Redis
// and the Qdrant stand-in. Workers are killed with SIGKILL and stopped with SIGTERM in the
// middle of jobs, Redis is stopped and started again, Qdrant fails, beats fail over; every
// document must end ready exactly once (one chunk row and one vector per chunk), and
// /health/workers and /health/queues must tell what happens meanwhile.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

import { redisCli, sleep } from '../lib/services.mjs';
import { startAlmanac, runAlmanac, migrate as runMigrate, httpRequest, waitFor } from '../lib/almanac.mjs';
import { sql, sqlRows } from '../lib/psql.mjs';
import { COLLECTION, HEARTBEAT_MS, CLAIM_IDLE_MS, LEASE_MS, RETRY_BASE_MS, READY_TIMEOUT_MS, docText, assertQueuesShape, metric, metricSum, assertWorkerShape, startSystem, waitDrained, recordOf } from '../lib/system.mjs';

// ---------------------------------------------------------------- 1. kill -9

describe('a worker killed with jobs in flight', () => {
  let sys;
  before(async () => {
    sys = await startSystem();
  });
  after(async () => {
    await sys?.stop();
  });

  test('its jobs are reclaimed by another worker; every document ready exactly once', async () => {
    // Slow Qdrant: each job of the first worker takes seconds, so some are caught in flight.
    await sys.qdrant.setMode('slow', { ms: 1500 });
    const w1 = await sys.worker({ ALMANAC_WORKER_CONCURRENCY: '2' });
    const uploadedFrom = Date.now(); // no job of this queue is older
    const ids = await sys.uploadMany(20, 'kill9');

    const busy = await waitFor(
      async () => {
        const rec = await recordOf(sys, w1);
        return rec && rec.jobs.length >= 1 ? rec : null;
      },
      { timeoutMs: 30000, intervalMs: 100, what: 'worker 1 with jobs in flight' },
    );
    assert.equal(busy.role, 'worker');
    assert.equal(busy.stale, false);
    assert.equal(busy.concurrency, 2);
    assert.ok(busy.jobs.every((j) => j.queue === 'ingest' && j.type === 'ingest' && j.attempt === 1), JSON.stringify(busy.jobs));
    const inFlight = await sys.queues();
    assert.ok(inFlight.ingest.pending >= 1, `pending while in flight: ${JSON.stringify(inFlight.ingest)}`);
    assert.ok(inFlight.ingest.length >= inFlight.ingest.pending);
    const age = inFlight.ingest.oldest_pending_age_s;
    const sinceUpload = (Date.now() - uploadedFrom) / 1000;
    assert.ok(age > 0 && age <= sinceUpload + 1, `the oldest pending job (${age} s) is one of these uploads (${sinceUpload} s ago)`);
    // The worker's own probe: alive, and its metrics count the jobs in flight.
    assert.equal((await w1.probe('/health')).status, 200);
    assert.ok(metric(await w1.metrics(), 'almanac_jobs_in_flight') >= 1);

    w1.signal('SIGKILL');
    await w1.waitExit();

    // Its record goes stale after two heartbeats, then expires after three.
    const stale = await waitFor(
      async () => {
        const rec = await recordOf(sys, w1);
        return rec?.stale ? rec : null;
      },
      { timeoutMs: 10000, intervalMs: 50, what: 'the killed worker shown stale' },
    );
    assert.ok(stale.jobs.length >= 1, 'a stale record still shows what it held');
    await waitFor(async () => !(await recordOf(sys, w1)), { timeoutMs: 10000, intervalMs: 100, what: 'the record expiring' });
    // Its jobs stay pending (delivered, never acknowledged) until someone reclaims them.
    const orphaned = await sys.queues();
    assert.ok(orphaned.ingest.pending >= 1, `orphaned jobs pending: ${JSON.stringify(orphaned.ingest)}`);
    assert.ok(orphaned.ingest.oldest_pending_age_s > 0);

    await sys.qdrant.setMode('ok');
    const w2 = await sys.worker({ ALMANAC_WORKER_CONCURRENCY: '2' });
    await sys.waitReady(ids);
    const reclaimed = w2.events('job.reclaimed');
    assert.ok(reclaimed.length >= 1, `worker 2 reclaimed the killed worker's jobs:\n${w2.output()}`);
    const total = sys.assertIndexed(ids);
    assert.equal(sys.qdrant.collections.count(COLLECTION), total, 'no stray vectors');
    const qs = await waitDrained(sys);
    assert.equal(qs.ingest.dead, 0);
    assert.equal(qs.ingest.oldest_pending_age_s, 0);
    // Worker 2 ran every job worker 1 did not finish (the heartbeat lags by up to a period).
    const doneBy1 = w1.events('job.done').length;
    const rec = await waitFor(async () => {
      const x = await recordOf(sys, w2);
      return x && x.processed >= ids.length - doneBy1 ? x : null;
    }, { timeoutMs: 5000, what: `worker 2 counting ${ids.length - doneBy1} jobs` });
    assert.equal(rec.stale, false);
    // A healthy worker: /health 200, /ready 200 with its dependency checks.
    assert.equal((await w2.probe('/health')).status, 200);
    const ready = await waitFor(async () => {
      const r = await w2.probe('/ready');
      return r.status === 200 ? r : null;
    }, { timeoutMs: 10000, what: 'worker /ready 200' });
    const checks = Object.keys(ready.json.checks).join(' ');
    for (const dep of ['postgres', 'redis', 'qdrant']) assert.match(checks, new RegExp(dep), `/ready checks ${dep}: ${checks}`);
  });
});

// ---------------------------------------------------------------- 2. Redis outage

describe('Redis stopped and started again during processing', () => {
  let sys;
  before(async () => {
    sys = await startSystem({ aof: true });
  });
  after(async () => {
    await sys?.stop();
  });

  test('workers reconnect by themselves and no job is lost', async () => {
    await sys.qdrant.setMode('slow', { ms: 150 });
    const w = await sys.worker({ ALMANAC_WORKER_CONCURRENCY: '2' });
    const ids = await sys.uploadMany(20, 'outage');
    await waitFor(() => [...sys.status(ids).values()].filter((d) => d.status === 'ready').length >= 2, {
      timeoutMs: 60000,
      what: 'a few documents ready',
    });

    await sys.redis.stop();
    // Uploads go on: their jobs wait in the outbox, committed with the document.
    const during = await sys.uploadMany(5, 'during-outage');
    assert.ok(Number(sql(sys.pg, 'SELECT count(*) FROM outbox')) >= 1, 'jobs kept in the outbox');
    const down = await httpRequest(`${sys.api.url}/health/queues`);
    assert.equal(down.status, 503, down.body);
    assert.match(down.json.error.message, /redis/);
    assert.equal((await httpRequest(`${sys.api.url}/health/workers`)).status, 503);
    // The worker stays alive (liveness) but not ready: Redis is required.
    const notReady = await waitFor(async () => {
      const r = await w.probe('/ready');
      return r.status === 503 ? r : null;
    }, { timeoutMs: 15000, what: 'worker /ready 503 with Redis down' });
    assert.match(JSON.stringify(notReady.json.checks), /redis/);
    assert.equal((await w.probe('/health')).status, 200);
    await sleep(1500);

    await sys.redis.start();
    const all = [...ids, ...during];
    await sys.waitReady(all);
    assert.equal(w.exited, false, 'the same worker process went on');
    assert.ok(w.events('worker.redis_down').length >= 1, 'the worker noticed the outage');
    const ready = sqlRows(sys.pg, "SELECT id FROM documents WHERE status = 'ready' ORDER BY id").map((r) => r.id);
    assert.deepEqual(ready, [...all].sort((a, b) => a - b), 'the ready documents are exactly the uploads');
    const total = sys.assertIndexed(all);
    assert.equal(sys.qdrant.collections.count(COLLECTION), total, 'no stray vectors');
    assert.equal(sql(sys.pg, 'SELECT count(*) FROM outbox'), '0', 'outbox drained');
    const qs = await waitDrained(sys);
    assert.equal(qs.ingest.dead, 0);
    const rec = await waitFor(() => recordOf(sys, w), { what: 'the worker heartbeating again' });
    assert.equal(rec.stale, false);
    await waitFor(async () => (await w.probe('/ready')).status === 200, { timeoutMs: 15000, what: 'worker ready again' });
  });
});

// ---------------------------------------------------------------- 3. Qdrant failing

// Qdrant answers /readyz but refuses the writes: the dependency is up, so each failure
// is the job's and spends an attempt (a Qdrant that is down spends none: tests/fault/).
describe('Qdrant failing', () => {
  let sys;
  before(async () => {
    sys = await startSystem();
  });
  after(async () => {
    await sys?.stop();
  });

  test('jobs are retried with backoff while it fails and succeed once it is back', async () => {
    await sys.qdrant.setMode('reject');
    const w = await sys.worker({ ALMANAC_JOB_MAX_ATTEMPTS: '10' });
    const ids = await sys.uploadMany(3, 'flaky');
    const qs = await waitFor(async () => {
      const x = await sys.queues();
      return x.ingest.delayed > 0 ? x : null;
    }, { timeoutMs: 30000, intervalMs: 50, what: 'delayed retries' });
    assert.equal(qs.ingest.dead, 0);
    const pending = await waitFor(
      () => [...sys.status(ids).values()].find((d) => d.status === 'pending' && d.error),
      { timeoutMs: 30000, what: 'a document pending with its error' },
    );
    assert.match(pending.error, /qdrant answered HTTP 500/);
    const retries = await waitFor(() => {
      const ev = w.events('job.retry');
      return ev.some((e) => e.attempt >= 2) ? ev : null;
    }, { timeoutMs: 30000, what: 'a second retry' });
    for (const e of retries) {
      assert.equal(e.queue, 'ingest');
      assert.match(e.error, /qdrant answered HTTP 500/);
      // full jitter: between half and all of base × 2^(attempt-1)
      const cap = RETRY_BASE_MS * 2 ** (e.attempt - 1);
      assert.ok(e.delay_ms >= cap / 2 && e.delay_ms <= cap, `delay ${e.delay_ms} for attempt ${e.attempt}`);
    }
    // The document counts its attempts.
    assert.ok(Number(sql(sys.pg, `SELECT max(attempts) FROM documents WHERE id IN (${ids})`)) >= 2);
    const rec = await waitFor(async () => {
      const x = await recordOf(sys, w);
      return x && x.failed >= 2 && x.retried >= 2 ? x : null;
    }, { timeoutMs: 5000, what: 'the heartbeat counting failures and retries' });
    assert.equal(rec.dead, 0);

    await sys.qdrant.setMode('ok');
    await sys.waitReady(ids);
    for (const d of sys.status(ids).values()) assert.equal(d.error, null, 'the error is cleared once ready');
    sys.assertIndexed(ids);
    const drained = await waitDrained(sys);
    assert.equal(drained.ingest.dead, 0);
    w.signal('SIGTERM');
    assert.equal((await w.waitExit(30000)).code, 0);
  });

  test('a job failing on every attempt becomes a dead letter; retry-dead replays it', async () => {
    await sys.qdrant.setMode('reject');
    const w = await sys.worker({ ALMANAC_JOB_MAX_ATTEMPTS: '2' });
    const [id] = await sys.uploadMany(1, 'poison');
    const failed = await waitFor(() => {
      const d = sys.status([id]).get(id);
      return d.status === 'failed' ? d : null;
    }, { timeoutMs: 30000, what: 'the document failed' });
    assert.match(failed.error, /qdrant answered HTTP 500/);
    let qs = await waitFor(async () => {
      const x = await sys.queues();
      return x.ingest.dead >= 1 ? x : null;
    }, { timeoutMs: 10000, what: 'a dead letter' });
    assert.equal(qs.ingest.dead, 1);
    assert.equal(qs.ingest.pending, 0);
    assert.equal(qs.ingest.delayed, 0);
    const dead = w.events('job.dead');
    assert.equal(dead.length, 1);
    assert.equal(dead[0].attempt, 2);
    assert.match(dead[0].error, /qdrant answered HTTP 500/);
    // The dead letter keeps the job and its error.
    const entry = redisCli(sys.redis.port, 'XRANGE', 'almanac:dead:ingest', '-', '+');
    assert.match(entry, /qdrant answered HTTP 500/);
    assert.match(entry, new RegExp(`"document_id":${id}\\b`));
    const stats = await runAlmanac(['jobs', 'stats'], { env: sys.env });
    assert.equal(stats.code, 0, stats.stderr);
    assert.match(stats.stdout, /^ingest\s+0\s+0\s+\d+\s+0\s+1\s/m);
    await waitFor(async () => (await recordOf(sys, w))?.dead === 1, { timeoutMs: 5000, what: 'the heartbeat counting the dead job' });

    // Replay as an administrator only; with Qdrant still failing it dies again after two
    // more attempts (a replay starts from the first attempt).
    const denied = await sys.c.call('POST', '/api/v1/admin/queues/retry-dead', { token: sys.alice });
    assert.equal(denied.status, 403, denied.body);
    const adminQueues = await sys.c.call('GET', '/api/v1/admin/queues', { token: sys.admin });
    assert.equal(adminQueues.status, 200, adminQueues.body);
    assertQueuesShape(adminQueues.json);
    const adminWorkers = await sys.c.call('GET', '/api/v1/admin/workers', { token: sys.admin });
    assert.equal(adminWorkers.status, 200, adminWorkers.body);
    adminWorkers.json.workers.forEach(assertWorkerShape);
    assert.equal((await sys.c.call('GET', '/api/v1/admin/workers', { token: sys.alice })).status, 403);
    const replay = await sys.c.call('POST', '/api/v1/admin/queues/retry-dead', { token: sys.admin });
    assert.equal(replay.status, 200, replay.body);
    assert.deepEqual(replay.json, { requeued: 1 });
    await waitFor(() => w.events('job.dead').length === 2, { timeoutMs: 30000, what: 'the replayed job dead again' });
    assert.deepEqual(w.events('job.dead').map((e) => e.attempt), [2, 2]);
    qs = await sys.queues();
    assert.equal(qs.ingest.dead, 1, 'the replayed letter left the dead letters, the new death added one');
    assert.equal(sys.status([id]).get(id).status, 'failed');
    assert.equal(sql(sys.pg, `SELECT attempts FROM documents WHERE id = ${id}`), '4');

    // Fixed: the command line replays it and the document ends ready.
    await sys.qdrant.setMode('ok');
    const r = await runAlmanac(['jobs', 'retry-dead'], { env: sys.env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^1 dead letter queued again$/m);
    await sys.waitReady([id]);
    sys.assertIndexed([id]);
    qs = await waitDrained(sys);
    assert.equal(qs.ingest.dead, 0);
    const again = await runAlmanac(['jobs', 'retry-dead'], { env: sys.env });
    assert.match(again.stdout, /^0 dead letters queued again$/m);
  });
});

// ---------------------------------------------------------------- 4. beats

/** almanac_beat_leader of a beat: 1 while it holds the lease. */
async function leads(beat) {
  return metric(await beat.metrics(), 'almanac_beat_leader') === 1;
}
const taskRuns = async (beat, task) => metricSum(await beat.metrics(), 'almanac_beat_task_runs_total', task ? { task } : {});
const beatId = (beat) => beat.events('beat.started')[0]?.id;
const relayedByBeat = (beat) =>
  beat
    .events('outbox.relayed')
    .filter((e) => e.by === 'beat')
    .reduce((n, e) => n + e.count, 0);

function addOutboxRows(pg, n, base) {
  const values = [...Array(n).keys()].map((i) => `('maintenance', 'purge_vectors', '{"document_id": ${base + i}}')`);
  sql(pg, `INSERT INTO outbox (queue, job_type, payload) VALUES ${values.join(', ')}`);
}

describe('beats', () => {
  let sys;
  let survivor;
  before(async () => {
    sys = await startSystem({ qdrant: false });
  });
  after(async () => {
    await sys?.stop();
  });

  test('one leader runs the tasks; a killed leader is replaced within the lease, a stopped one at once', async (t) => {
    const b1 = await sys.beat();
    const b2 = await sys.beat();
    const [leader, standby] = await waitFor(
      async () => {
        const l1 = await leads(b1);
        const l2 = await leads(b2);
        if (l1 === l2) return null;
        return l1 ? [b1, b2] : [b2, b1];
      },
      { timeoutMs: 15000, what: 'exactly one leader' },
    );
    const beats = await waitFor(async () => {
      const ws = (await sys.workers()).filter((x) => x.role === 'beat');
      return ws.length === 2 && ws.every((x) => !x.stale) && ws.some((x) => x.leader) ? ws : null;
    }, { what: 'both beats heartbeating, the leader saying so' });
    const leading = beats.filter((x) => x.leader);
    assert.equal(leading.length, 1, JSON.stringify(beats));
    assert.equal(leading[0].pid, leader.pid);
    assert.equal(leading[0].id, beatId(leader));
    const term1 = leading[0].term;
    assert.match(term1, new RegExp(`^${beatId(leader)}:\\d+$`));
    assert.equal(beats.find((x) => x.pid === standby.pid).term, '');
    assert.equal(redisCli(sys.redis.port, 'GET', 'almanac:beat:leader'), term1);

    // Only the leader runs tasks.
    await waitFor(async () => (await taskRuns(leader, 'relay_outbox')) >= 1, { timeoutMs: 15000, what: 'the leader relaying' });
    assert.ok(redisCli(sys.redis.port, 'HGET', 'almanac:beat:last_run', 'relay_outbox') > 0);
    addOutboxRows(sys.pg, 3, 900001);
    await waitFor(async () => (await sys.queues()).maintenance.length === 3, { timeoutMs: 15000, what: 'rows relayed by the beat' });
    assert.equal(sql(sys.pg, 'SELECT count(*) FROM outbox'), '0');
    await waitFor(() => relayedByBeat(leader) === 3, { timeoutMs: 5000, what: 'the relay logged by the leader' });
    assert.equal(await taskRuns(standby), 0, 'the standby ran nothing');
    assert.equal(standby.events('outbox.relayed').length, 0);

    // kill -9 the leader: the standby takes over within the lease (+1 s) and runs the tasks.
    const runsBefore = await taskRuns(standby, 'relay_outbox');
    const t0 = Date.now();
    leader.signal('SIGKILL');
    await waitFor(() => leads(standby), { timeoutMs: LEASE_MS + 5000, intervalMs: 50, what: 'the standby leading' });
    const took = Date.now() - t0;
    t.diagnostic(`takeover after kill -9: ${took} ms`);
    assert.ok(took <= LEASE_MS + 1000, `takeover after ${took} ms`);
    const term2 = redisCli(sys.redis.port, 'GET', 'almanac:beat:leader');
    assert.match(term2, new RegExp(`^${beatId(standby)}:\\d+$`));
    assert.ok(Number(term2.split(':').pop()) > Number(term1.split(':').pop()), `a new fencing token: ${term1} -> ${term2}`);
    addOutboxRows(sys.pg, 2, 900011);
    await waitFor(async () => (await sys.queues()).maintenance.length === 5, { timeoutMs: 15000, what: 'the new leader relaying' });
    assert.ok((await taskRuns(standby, 'relay_outbox')) > runsBefore);
    assert.equal(relayedByBeat(standby), 2);
    // The dead leader's record says leader until it expires; then one beat, leading.
    await waitFor(async () => !(await recordOf(sys, leader)), { timeoutMs: 10000, what: 'the killed beat expiring' });
    const now = (await sys.workers()).filter((x) => x.role === 'beat');
    assert.equal(now.length, 1);
    assert.equal(now[0].leader, true);
    assert.equal(now[0].term, term2);

    // SIGTERM the leader: it releases the lease, a standby takes over at once.
    const b3 = await sys.beat();
    await sleep(LEASE_MS / 2);
    assert.equal(await leads(b3), false, 'a new beat stands by while a leader holds the lease');
    const t1 = Date.now();
    standby.signal('SIGTERM');
    const ex = await standby.waitExit(15000);
    assert.deepEqual(ex, { code: 0, signal: null }, standby.output());
    assert.notEqual(redisCli(sys.redis.port, 'GET', 'almanac:beat:leader'), term2, 'lease released on exit');
    assert.equal(standby.events('beat.released').length, 1);
    await waitFor(() => leads(b3), { timeoutMs: LEASE_MS + 5000, intervalMs: 50, what: 'b3 leading' });
    const handover = Date.now() - t1;
    t.diagnostic(`handover after SIGTERM: ${handover} ms`);
    assert.ok(handover < LEASE_MS, `handover after ${handover} ms`);
    assert.equal(await recordOf(sys, standby), undefined, 'a stopped beat leaves the list at once');
    await waitFor(async () => (await taskRuns(b3, 'relay_outbox')) >= 1, { timeoutMs: 15000, what: 'b3 running tasks' });
    survivor = b3;
  });

  test('a leader that lost its lease while stalled enqueues nothing (fenced)', async () => {
    const b = survivor;
    assert.ok(b && (await leads(b)), 'a leader from the test before');
    // The other tasks that write the outbox ran at the first election and are next due a
    // minute later (the schedule lives in Redis): the next one to touch the outbox is the relay.
    assert.ok((await taskRuns(b, 'relay_outbox')) >= 1);
    const length0 = (await sys.queues()).maintenance.length;
    // Hold the outbox locked with two new rows in it: the leader's next relay waits.
    const locker = spawn('psql', [sys.pg.url, '-X', '-q', '-v', 'ON_ERROR_STOP=1'], { stdio: ['pipe', 'pipe', 'pipe'] });
    try {
      locker.stdin.write(
        `BEGIN; LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE;
         INSERT INTO outbox (queue, job_type, payload) VALUES ('maintenance', 'purge_vectors', '{"document_id": 900101}'),
                                                               ('maintenance', 'purge_vectors', '{"document_id": 900102}');\n`,
      );
      await waitFor(
        () =>
          sql(
            sys.pg,
            `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'almanac-beat' AND wait_event_type = 'Lock'
               AND query LIKE 'SELECT id, queue, job_type%'`,
          ) === '1',
        { timeoutMs: 15000, intervalMs: 50, what: 'the relay waiting for the outbox' },
      );
      // Meanwhile another beat became leader (a new term from the fence counter).
      const token = redisCli(sys.redis.port, 'INCR', 'almanac:beat:fence');
      redisCli(sys.redis.port, 'SET', 'almanac:beat:leader', `intruder:${token}`, 'PX', '4000');
      locker.stdin.end('COMMIT;\n');
      await new Promise((resolve) => locker.once('close', resolve));
      await waitFor(async () => !(await leads(b)), { timeoutMs: 5000, intervalMs: 50, what: 'the stalled leader stepping down' });
      await sleep(500);
      assert.equal((await sys.queues()).maintenance.length, length0, 'the fenced relay enqueued nothing');
      assert.equal(sql(sys.pg, 'SELECT count(*) FROM outbox'), '2', 'the rows wait in the outbox');
    } finally {
      if (locker.exitCode === null) locker.kill('SIGKILL');
    }
    // The intruder's lease lapses: the beat leads again and relays the rows, once.
    await waitFor(() => leads(b), { timeoutMs: 10000, intervalMs: 50, what: 'the beat leading again' });
    await waitFor(async () => (await sys.queues()).maintenance.length === length0 + 2, {
      timeoutMs: 15000,
      what: 'the rows relayed by the new term',
    });
    assert.equal(sql(sys.pg, 'SELECT count(*) FROM outbox'), '0');
  });
});

/** Consumer names of the group `workers` on one queue's stream. */
function consumersOf(redis, queue) {
  const lines = redisCli(redis.port, 'XINFO', 'CONSUMERS', `almanac:queue:${queue}`, 'workers').split('\n');
  return lines.flatMap((l, i) => (l === 'name' ? [lines[i + 1]] : []));
}

describe('consumers of workers that exited', () => {
  let sys;
  before(async () => {
    sys = await startSystem({ qdrant: false });
  });
  after(async () => {
    await sys?.stop();
  });

  test('the beat forgets the ones holding nothing; one holding a job stays, live workers go on', async () => {
    // An exited worker that holds a job: its entry must not be lost with it.
    redisCli(sys.redis.port, 'XGROUP', 'CREATE', 'almanac:queue:maintenance', 'workers', '$', 'MKSTREAM');
    redisCli(sys.redis.port, 'XADD', 'almanac:queue:maintenance', '*', 'job', '{"type":"purge_vectors","document_id":1}');
    redisCli(sys.redis.port, 'XREADGROUP', 'GROUP', 'workers', 'gone-holding', 'COUNT', '1', 'STREAMS', 'almanac:queue:maintenance', '>');
    // The live worker never takes jobs from others here, so the held one stays where it is.
    // Redis creates a reader's consumer when it first serves it: give the worker a job.
    await sys.worker({ ALMANAC_JOB_CLAIM_IDLE_MS: '600000' });
    await sys.waitReady([await sys.upload('consumer-1', 2)]);
    const live = consumersOf(sys.redis, 'ingest');
    assert.equal(live.length, 1, 'the worker is a consumer of the ingest queue');
    redisCli(sys.redis.port, 'XGROUP', 'CREATECONSUMER', 'almanac:queue:ingest', 'workers', 'gone-idle');
    assert.deepEqual(consumersOf(sys.redis, 'ingest').sort(), ['gone-idle', live[0]].sort());

    // Claim idle 1 s: the beat forgets consumers silent for 10 s, checking every 10 s.
    const beat = await sys.beat({ ALMANAC_JOB_CLAIM_IDLE_MS: '1000' });
    await waitFor(() => !consumersOf(sys.redis, 'ingest').includes('gone-idle'), {
      timeoutMs: 40000,
      intervalMs: 500,
      what: 'the silent consumer forgotten',
    });
    assert.ok(consumersOf(sys.redis, 'maintenance').includes('gone-holding'), 'a consumer holding a job stays');
    assert.equal(redisCli(sys.redis.port, 'XPENDING', 'almanac:queue:maintenance', 'workers').split('\n')[0], '1', 'the held job is still pending');
    // Its log line may reach us a moment after Redis shows the change.
    await waitFor(() => beat.events('beat.consumers_pruned').length >= 1, { timeoutMs: 5000, what: 'the prune logged' });
    assert.ok((await sys.queues()).maintenance.consumers >= 1);
    // A live worker whose consumer was forgotten while it waited gets it back with its next job.
    await sys.waitReady([await sys.upload('consumer-2', 2)]);
    assert.ok(consumersOf(sys.redis, 'ingest').length >= 1);
    sys.assertNoCrash();
  });
});

// ---------------------------------------------------------------- 5. SIGTERM

describe('a worker stopped with SIGTERM during a long job', () => {
  let sys;
  let first;
  let second;
  before(async () => {
    sys = await startSystem();
  });
  after(async () => {
    await sys?.stop();
  });

  test('with enough grace the job finishes and the worker exits 0; it takes no new job', async () => {
    await sys.qdrant.setMode('slow', { ms: 1000 });
    const w = await sys.worker({ ALMANAC_WORKER_CONCURRENCY: '1', ALMANAC_SHUTDOWN_TIMEOUT_MS: '30000' });
    [first, second] = await sys.uploadMany(2, 'graceful');
    const rec = await waitFor(async () => {
      const x = await recordOf(sys, w);
      return x && x.jobs.length === 1 ? x : null;
    }, { timeoutMs: 30000, intervalMs: 100, what: 'a job in flight' });
    assert.equal(sys.status([first]).get(first).status, 'processing');
    w.signal('SIGTERM');
    const ex = await w.waitExit(60000);
    assert.deepEqual(ex, { code: 0, signal: null }, w.output());
    assert.equal(sys.status([first]).get(first).status, 'ready', 'the running job finished before the exit');
    sys.assertIndexed([first]);
    const events = w.logLines().map((l) => l.event);
    assert.ok(events.indexOf('job.done') < events.indexOf('shutdown.done'), events.join(' '));
    assert.equal(w.events('job.done').length, 1, 'no new job after SIGTERM');
    assert.equal(w.events('job.done')[0].job, rec.jobs[0].id);
    assert.equal(await recordOf(sys, w), undefined, 'a stopped worker leaves the list at once');
    assert.equal(sys.status([second]).get(second).status, 'pending');
    const qs = await sys.queues();
    assert.equal(qs.ingest.pending, 0);
    assert.equal(qs.ingest.length, 1, 'the second job waits in the queue');
  });

  test('with a grace shorter than the job: exit 0, the job stays pending, another worker finishes it', async () => {
    await sys.qdrant.setMode('slow', { ms: 3000 });
    const w = await sys.worker({ ALMANAC_WORKER_CONCURRENCY: '1', ALMANAC_SHUTDOWN_TIMEOUT_MS: '500' });
    await waitFor(async () => (await recordOf(sys, w))?.jobs.length === 1, { timeoutMs: 30000, intervalMs: 100, what: 'a job in flight' });
    const t0 = Date.now();
    w.signal('SIGTERM');
    const ex = await w.waitExit(15000);
    assert.deepEqual(ex, { code: 0, signal: null }, w.output());
    assert.ok(Date.now() - t0 < 2500, `exited ${Date.now() - t0} ms after SIGTERM`);
    assert.equal(w.events('shutdown.timeout').length, 1);
    assert.equal(w.events('job.done').length, 0);
    assert.equal(sys.status([second]).get(second).status, 'processing');
    assert.equal(await recordOf(sys, w), undefined);
    const qs = await sys.queues();
    assert.equal(qs.ingest.pending, 1, 'left unacknowledged for another worker');

    await sys.qdrant.setMode('ok');
    const w2 = await sys.worker();
    await sys.waitReady([second]);
    assert.equal(w2.events('job.reclaimed').length, 1, w2.output());
    const total = sys.assertIndexed([first, second]);
    assert.equal(sys.qdrant.collections.count(COLLECTION), total);
    await waitDrained(sys);
  });
});

// ---------------------------------------------------------------- 6. schema

describe('a worker started before the migration', () => {
  let sys;
  before(async () => {
    sys = await startSystem({ qdrant: false, migrate: false });
  });
  after(async () => {
    await sys?.stop();
  });

  test('waits, leaving documents pending, until almanac migrate runs', async () => {
    const env = sys.env;
    await runMigrate(env, ['--target', '3']);
    const w = await sys.worker();
    sys.api = await startAlmanac(['api'], { env });
    sys.procs.push(sys.api);
    const body = docText('before-migrate', 3);
    const id = Number(
      sql(
        sys.pg,
        `INSERT INTO users (email, password_hash, role) VALUES ('early@example.org', 'x', 'user');
         INSERT INTO knowledge_bases (owner_id, name) VALUES (1, 'early');
         INSERT INTO documents (knowledge_base_id, title, filename, media_type, size_bytes, sha256, content)
           VALUES (1, 'early', 'early.txt', 'text/plain', ${Buffer.byteLength(body)}, repeat('b', 64), '${body.replace(/'/g, "''")}')
           RETURNING id`,
      ),
    );
    const job = JSON.stringify({ id: 'test-1', type: 'ingest', payload: { document_id: id }, attempt: 1 });
    redisCli(sys.redis.port, 'XADD', 'almanac:queue:ingest', '*', 'job', job);

    // Alive, not ready, saying why; the job is not taken.
    assert.equal((await w.probe('/health')).status, 200);
    const ready = await waitFor(async () => {
      const x = await w.probe('/ready');
      return x.status === 503 && /almanac migrate/.test(x.body) ? x : null;
    }, { timeoutMs: 15000, what: 'worker /ready failing on the schema' });
    assert.match(ready.body, /version 3/);
    assert.ok(w.events('worker.schema_old').length >= 1);
    await sleep(2000);
    assert.equal(sql(sys.pg, `SELECT status FROM documents WHERE id = ${id}`), 'pending');
    const qs = Object.fromEntries((await httpRequest(`${sys.api.url}/health/queues`)).json.queues.map((x) => [x.name, x]));
    assert.equal(qs.ingest.length, 1);
    assert.equal(qs.ingest.pending, 0, 'nobody took it');
    const rec = (await httpRequest(`${sys.api.url}/health/workers`)).json.workers.find((x) => x.pid === w.pid);
    assert.ok(rec && !rec.stale && rec.jobs.length === 0, JSON.stringify(rec));

    await runMigrate(env);
    await waitFor(() => sql(sys.pg, `SELECT status FROM documents WHERE id = ${id}`) === 'ready', {
      timeoutMs: 30000,
      intervalMs: 200,
      what: 'the document ready after migrate',
    });
    assert.equal(
      sql(sys.pg, `SELECT count(*) = (SELECT chunk_count FROM documents WHERE id = ${id}) FROM chunks WHERE document_id = ${id}`),
      't',
    );
    await waitFor(async () => (await w.probe('/ready')).status === 200, { timeoutMs: 15000, what: 'worker ready after migrate' });
  });
});
