/* SPDX-License-Identifier: Apache-2.0 */
// The system the worker, beat and fault tests run: PostgreSQL, Redis, the Qdrant
// stand-in, migrations, users, the api and a knowledge base; workers and beats are
// started by the tests. Plus the helpers those tests share: document bodies, Prometheus
// samples, the pinned shapes of /health/workers and /health/queues, readiness waits.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import { startPostgres, startRedis, sleep } from './services.mjs';
import { startAlmanac, startProbed, migrate as runMigrate, createUser, httpRequest, waitFor } from './almanac.mjs';
import { startQdrantStandin } from './qdrant-standin.mjs';
import { stackEnv } from './stack.mjs';
import { client, PASSWORD } from './apiclient.mjs';
import { sqlRows } from './psql.mjs';

export const COLLECTION = 'almanac_chunks';
export const HEARTBEAT_MS = 500;
export const CLAIM_IDLE_MS = 2000;
export const LEASE_MS = 2000;
export const RETRY_BASE_MS = 200;
// The ASan build is several times slower than the release build: generous waits.
export const READY_TIMEOUT_MS = 90000;

// ---------------------------------------------------------------- helpers

/** A document body of about `paragraphs` × 300 characters, unique to tag. */
export function docText(tag, paragraphs = 8) {
  const out = [`Document ${tag}`, ''];
  for (let p = 0; p < paragraphs; p++) {
    out.push(
      `Section ${p} of ${tag}: the maintenance crew inspects valve ${p * 7 + 3} every morning, ` +
        `records the pressure in the logbook and reports anything above the limit to the shift lead. ` +
        `Spare gaskets are kept in cabinet ${p + 1}; the key is at the front desk (${crypto.randomUUID()}).`,
    );
    out.push('');
  }
  return out.join('\n');
}

/** Prometheus text: the values of the samples whose name and labels match, in order. */
export function* samples(text, name, labels) {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] || '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) yield Number(m[3]);
  }
}

/** Prometheus text: the value of the first sample whose name and labels match. */
export function metric(text, name, labels = {}) {
  for (const v of samples(text, name, labels)) return v;
  return undefined;
}

/** Sum of every sample of name whose labels match. */
export function metricSum(text, name, labels = {}) {
  let sum = 0;
  for (const v of samples(text, name, labels)) sum += v;
  return sum;
}

/** The pinned shape of one /health/workers entry. */
export function assertWorkerShape(w) {
  assert.equal(typeof w.id, 'string', JSON.stringify(w));
  assert.ok(w.role === 'worker' || w.role === 'beat', `role: ${JSON.stringify(w)}`);
  assert.equal(typeof w.leader, 'boolean', `leader: ${JSON.stringify(w)}`);
  assert.equal(typeof w.stale, 'boolean', `stale: ${JSON.stringify(w)}`);
  assert.equal(typeof w.last_seen, 'string', `last_seen: ${JSON.stringify(w)}`);
  assert.ok(!Number.isNaN(Date.parse(w.last_seen)), `last_seen is a time: ${w.last_seen}`);
  assert.equal(typeof w.pid, 'number');
  assert.equal(typeof w.host, 'string');
  assert.equal(typeof w.concurrency, 'number');
  if (w.role === 'worker') {
    assert.equal(w.leader, false, 'a worker never leads');
    assert.ok(Array.isArray(w.jobs), `jobs: ${JSON.stringify(w)}`);
    for (const j of w.jobs) {
      assert.equal(typeof j.id, 'string');
      assert.equal(typeof j.queue, 'string');
      assert.equal(typeof j.attempt, 'number');
      assert.ok(!Number.isNaN(Date.parse(j.started_at)), `started_at: ${j.started_at}`);
    }
    for (const k of ['processed', 'failed', 'retried', 'dead']) assert.equal(typeof w[k], 'number', k);
  } else {
    assert.equal(typeof w.term, 'string');
    assert.equal(typeof w.tasks, 'object');
  }
}

/** The pinned shape of /health/queues. */
export function assertQueuesShape(body) {
  assert.ok(Array.isArray(body.queues), JSON.stringify(body));
  assert.deepEqual(
    body.queues.map((q) => q.name),
    ['ingest', 'maintenance', 'ingest_bulk'],
  );
  for (const q of body.queues) {
    for (const k of ['length', 'pending', 'oldest_pending_age_s', 'delayed', 'dead']) {
      assert.equal(typeof q[k], 'number', `${q.name}.${k}: ${JSON.stringify(q)}`);
      assert.ok(q[k] >= 0, `${q.name}.${k} >= 0`);
    }
    assert.ok(Number.isInteger(q.length) && Number.isInteger(q.pending) && Number.isInteger(q.delayed) && Number.isInteger(q.dead));
  }
}

/**
 * PostgreSQL, Redis, the Qdrant stand-in, migrations, an admin and a user, the api, a
 * knowledge base. Workers and beats are started by the tests. pgSettings: server
 * settings of PostgreSQL (startPostgres's settings).
 */
export async function startSystem({ aof = false, qdrant = true, migrate = true, env = {}, api = true, pgSettings = {} } = {}) {
  const pg = await startPostgres({ settings: pgSettings });
  const redis = await startRedis({ aof });
  const q = qdrant ? await startQdrantStandin() : null;
  const common = stackEnv(pg, redis, q, {
    ALMANAC_HEARTBEAT_MS: String(HEARTBEAT_MS),
    ALMANAC_JOB_CLAIM_IDLE_MS: String(CLAIM_IDLE_MS),
    ALMANAC_BEAT_LEASE_MS: String(LEASE_MS),
    ALMANAC_JOB_RETRY_BASE_MS: String(RETRY_BASE_MS),
    ...env,
  });
  const sys = { pg, redis, qdrant: q, env: common, procs: [] };
  /** Throws when a started process died by itself (a crash, not a kill of the test's). */
  sys.assertNoCrash = () => {
    for (const p of sys.procs) {
      if (!p.exited || p.proc.signalCode === 'SIGKILL') continue;
      const { exitCode: code, signalCode: signal } = p.proc;
      if (code !== 0) {
        throw new Error(`almanac ${p.proc.spawnargs.slice(1).join(' ')} (pid ${p.pid}) died: code ${code}, signal ${signal}\n${p.output().slice(-6000)}`);
      }
    }
  };
  sys.stop = async () => {
    for (const p of sys.procs) await p.stop();
    if (q) await q.close();
    await redis.stop();
    await pg.stop();
  };
  sys.worker = async (extra = {}, opts) => {
    const w = await startProbed('worker', { ...common, ...extra }, opts);
    sys.procs.push(w);
    return w;
  };
  sys.beat = async (extra = {}, opts) => {
    const b = await startProbed('beat', { ...common, ...extra }, opts);
    sys.procs.push(b);
    return b;
  };
  if (!migrate) return sys;
  await runMigrate(common);
  await createUser(common, 'admin@example.org', PASSWORD, { admin: true });
  await createUser(common, 'alice@example.org', PASSWORD);
  if (!api) return sys;
  sys.api = await startAlmanac(['api'], { env: common });
  sys.procs.push(sys.api);
  sys.c = client(sys.api);
  sys.admin = await sys.c.login('admin@example.org');
  sys.alice = await sys.c.login('alice@example.org');
  sys.kb = (await sys.c.createKb(sys.alice, 'plant manuals')).id;
  sys.upload = async (tag, paragraphs) => {
    const r2 = await sys.c.upload(sys.alice, sys.kb, `${tag}.txt`, docText(tag, paragraphs));
    assert.equal(r2.status, 202, r2.body);
    return r2.json.id;
  };
  sys.uploadMany = async (n, prefix, paragraphs) => {
    const ids = [];
    for (let i = 0; i < n; i++) ids.push(await sys.upload(`${prefix}-${i}`, paragraphs));
    return ids;
  };
  sys.workers = async () => {
    const r2 = await httpRequest(`${sys.api.url}/health/workers`);
    assert.equal(r2.status, 200, r2.body);
    assert.ok(Array.isArray(r2.json.workers), r2.body);
    r2.json.workers.forEach(assertWorkerShape);
    return r2.json.workers;
  };
  sys.queues = async () => {
    const r2 = await httpRequest(`${sys.api.url}/health/queues`);
    assert.equal(r2.status, 200, r2.body);
    assertQueuesShape(r2.json);
    return Object.fromEntries(r2.json.queues.map((x) => [x.name, x]));
  };
  sys.doc = (id) => sys.c.document(sys.alice, id);
  sys.status = (ids) => {
    const rows = sqlRows(pg, `SELECT id, status, error, chunk_count FROM documents WHERE id IN (${ids.join(',')}) ORDER BY id`);
    return new Map(rows.map((r2) => [r2.id, r2]));
  };
  /** Waits until every id is ready; fails at once when one failed or a process crashed. */
  sys.waitReady = async (ids, timeoutMs = READY_TIMEOUT_MS) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      sys.assertNoCrash();
      const st = sys.status(ids);
      const failed = [...st.values()].filter((d) => d.status === 'failed');
      if (failed.length) throw new Error(`documents failed: ${JSON.stringify(failed)}`);
      const left = [...st.values()].filter((d) => d.status !== 'ready');
      if (left.length === 0 && st.size === ids.length) return;
      if (Date.now() > deadline) {
        const logs = sys.procs.map((p) => `--- ${p.proc.spawnargs.slice(1).join(' ')} (pid ${p.pid})\n${p.output().slice(-4000)}`);
        throw new Error(`documents not ready after ${timeoutMs} ms: ${JSON.stringify(left.slice(0, 5))}\n${logs.join('\n')}`);
      }
      await sleep(200);
    }
  };
  /** Exactly chunk_count chunks in PostgreSQL and chunk_count vectors in Qdrant per document. */
  sys.assertIndexed = (ids) => {
    const rows = sqlRows(
      pg,
      `SELECT d.id, d.status, d.chunk_count, (SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS chunks
         FROM documents d WHERE d.id IN (${ids.join(',')}) ORDER BY d.id`,
    );
    assert.equal(rows.length, ids.length);
    let total = 0;
    for (const r2 of rows) {
      assert.equal(r2.status, 'ready', `document ${r2.id}`);
      assert.ok(r2.chunk_count > 0, `document ${r2.id} has chunks`);
      assert.equal(r2.chunks, r2.chunk_count, `document ${r2.id}: chunk rows`);
      if (q) {
        const pts = q.collections.pointsOf(COLLECTION, r2.id);
        assert.equal(pts.length, r2.chunk_count, `document ${r2.id}: one vector per chunk, no duplicate`);
        assert.deepEqual(
          pts.map((p) => p.payload.chunk_index),
          [...Array(r2.chunk_count).keys()],
          `document ${r2.id}: chunk indexes`,
        );
      }
      total += r2.chunk_count;
    }
    if (q) {
      assert.equal(q.invalidRequests, 0, `requests against the Qdrant contract: ${JSON.stringify(q.invalid.slice(0, 3))}`);
    }
    return total;
  };
  return sys;
}

/** Waits until the queue is drained: nothing pending, delayed or waiting. */
export async function waitDrained(sys, name = 'ingest', timeoutMs = 30000) {
  return waitFor(
    async () => {
      const qs = await sys.queues();
      const x = qs[name];
      return x.pending === 0 && x.length === 0 && x.delayed === 0 ? qs : null;
    },
    { timeoutMs, intervalMs: 200, what: `queue ${name} drained` },
  );
}

/** The worker's record in /health/workers (by pid), or undefined. */
export async function recordOf(sys, proc) {
  return (await sys.workers()).find((w) => w.pid === proc.pid);
}

