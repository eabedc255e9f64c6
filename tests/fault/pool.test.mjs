/* SPDX-License-Identifier: Apache-2.0 */
// Fault suite, the api's PostgreSQL pool: every process of PostgreSQL frozen with SIGSTOP
// while many more requests than pooled connections arrive at once. What must hold: a
// request that waits for a connection holds no HTTP thread, so every request is answered
// within about ALMANAC_DB_TIMEOUT_MS (none hangs behind a thread that is busy, none is
// closed without an answer); those that got no connection answer 503 with Retry-After and
// a JSON error; /health on the probe listener answers throughout; after the thaw every
// request is served again and the pool holds no more than its size in connections. A
// graceful stop with requests still waiting ends their waits and exits 0 (under the
// sanitizer build: no connection or wait leaked).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { sleep } from '../lib/services.mjs';
import { httpRequest, timed, waitFor } from '../lib/almanac.mjs';
import { sql } from '../lib/psql.mjs';
import { startSystem } from '../lib/system.mjs';

const DB_TIMEOUT_MS = 2000;
const POOL = 2;
const THREADS = 4;
const N = 40;
// Scheduling on a loaded machine under ASan; a request that waited behind a busy thread
// would take a multiple of the deadline instead.
const MARGIN_MS = 1500;

/** The api pool's own sessions (the readiness checks and the relay name themselves apart). */
function poolSessions(pg) {
  return Number(sql(pg, "SELECT count(*) FROM pg_stat_activity WHERE datname = 'almanac' AND application_name = 'almanac'"));
}

describe('PostgreSQL frozen under more requests than pooled connections', () => {
  let sys;
  before(async () => {
    sys = await startSystem({
      env: {
        ALMANAC_DB_TIMEOUT_MS: String(DB_TIMEOUT_MS),
        ALMANAC_DB_POOL_SIZE: String(POOL),
        ALMANAC_HTTP_THREADS: String(THREADS),
        ALMANAC_READY_TIMEOUT_MS: '1000',
      },
    });
  });
  after(async () => {
    sys?.pg.thaw();
    await sys?.stop();
  });

  // Each over a fresh connection, so that none waits for another's socket in the client.
  const list = () =>
    timed(() =>
      httpRequest(`${sys.api.url}/api/v1/knowledge-bases`, { headers: { Authorization: `Bearer ${sys.alice}` }, timeoutMs: 30000 }).catch((e) => ({ error: e.message })),
    );

  test('every request is answered within the deadline; the unlucky get 503 with Retry-After', async (t) => {
    // The pool holds its connections before the freeze: some requests get one and then
    // time out in their statement (504), the rest find the pool exhausted.
    const warm = await Promise.all([list(), list(), list(), list()]);
    assert.deepEqual(
      warm.map((w) => w.value.status),
      [200, 200, 200, 200],
    );
    let probing = true;
    const health = [];
    const prober = (async () => {
      while (probing) {
        const r = await timed(() => httpRequest(`${sys.api.probeUrl}/health`, { timeoutMs: 2000 }).catch((e) => ({ error: e.message })));
        health.push({ status: r.value.status ?? r.value.error, ms: Math.round(r.ms) });
        await sleep(100);
      }
    })();
    sys.pg.freeze();
    let results;
    const main = [];
    try {
      const all = Promise.all(Array.from({ length: N }, list));
      // Meanwhile the api's own listener serves what needs no database at once: the
      // waiting requests hold none of its threads (a blocked one would cost seconds).
      await sleep(500);
      for (let i = 0; i < 3; i++) main.push(await timed(() => httpRequest(`${sys.api.url}/health`, { timeoutMs: 10000 }).catch((e) => ({ error: e.message }))));
      results = await all;
    } finally {
      probing = false;
      await prober;
      sys.pg.thaw();
    }
    const summary = results.map(({ value: r, ms }) => ({ status: r.status ?? r.error, ms: Math.round(ms), retry: r.headers?.['retry-after'], code: r.json?.error?.code }));
    const shown = JSON.stringify(summary);
    for (const { value: r } of results) {
      assert.equal(r.error, undefined, `every request answered: ${shown}`);
      assert.ok(r.complete, `every answer complete: ${shown}`);
    }
    const slowest = Math.max(...results.map((x) => x.ms));
    const count = (s) => summary.filter((x) => x.status === s).length;
    t.diagnostic(`frozen: 503 x${count(503)}, 504 x${count(504)}, slowest ${Math.round(slowest)} ms`);
    assert.ok(slowest <= DB_TIMEOUT_MS + MARGIN_MS, `slowest answer ${Math.round(slowest)} ms: ${shown}`);
    const unavailable = results.filter((x) => x.value.status === 503).map((x) => x.value);
    const timedOut = results.filter((x) => x.value.status === 504).map((x) => x.value);
    assert.equal(unavailable.length + timedOut.length, N, `only 503 and 504: ${shown}`);
    // Only a request that had a connection can time out in a statement.
    assert.ok(timedOut.length <= POOL, `504s: ${timedOut.length} (pool ${POOL}): ${shown}`);
    assert.ok(unavailable.length >= N - POOL, shown);
    for (const r of unavailable) {
      assert.match(r.headers['retry-after'] ?? '', /^\d+$/, `Retry-After on a 503: ${r.body}`);
      assert.match(r.headers['content-type'], /^application\/json/);
      assert.equal(r.json?.error?.code, 'unavailable', r.body);
      // Waited for a connection until the deadline, had no time left for one when its
      // busy thread got to it, or connected in vain within the time it had left.
      assert.match(r.json.error.message, /^database unavailable: (all 2 connections busy|no time left to connect|timeout after \d+ ms \(connect\))/, r.body);
    }
    for (const r of timedOut) assert.equal(r.json?.error?.code, 'timeout', r.body);
    const mainShown = JSON.stringify(main.map((m) => ({ status: m.value.status ?? m.value.error, ms: Math.round(m.ms) })));
    assert.ok(
      main.every((m) => m.value.status === 200 && m.ms < 1000),
      `/health on the api listener while requests wait: ${mainShown}`,
    );
    assert.ok(health.length >= 3, `probes during the freeze: ${JSON.stringify(health)}`);
    assert.ok(
      health.every((h) => h.status === 200),
      `/health during the freeze: ${JSON.stringify(health)}`,
    );

    // Thawed: served again, all at once, and the pool stays within its size.
    await waitFor(async () => (await list()).value.status === 200, { timeoutMs: 20000, what: 'requests served after the thaw' });
    const again = await Promise.all(Array.from({ length: N }, list));
    assert.deepEqual(
      again.map((x) => x.value.status ?? x.value.error),
      Array(N).fill(200),
    );
    await waitFor(() => poolSessions(sys.pg) <= POOL, { timeoutMs: 10000, what: `at most ${POOL} pool sessions` });
    assert.ok(poolSessions(sys.pg) <= POOL);
    assert.equal(sys.api.output().includes('http.no_reply'), false, 'every handler answered');
    sys.assertNoCrash();
  });
});

describe('a graceful stop while requests wait for a connection', () => {
  let sys;
  before(async () => {
    // Waits longer than the shutdown's own deadline: the stop itself must end them.
    sys = await startSystem({
      env: {
        ALMANAC_DB_TIMEOUT_MS: '6000',
        ALMANAC_DB_POOL_SIZE: '1',
        ALMANAC_HTTP_THREADS: String(THREADS),
        ALMANAC_SHUTDOWN_DELAY_MS: '0',
        ALMANAC_SHUTDOWN_TIMEOUT_MS: '300',
      },
    });
  });
  after(async () => {
    sys?.pg.thaw();
    await sys?.stop();
  });

  test('the waiting requests are answered or closed, the api exits 0', async () => {
    const warm = await httpRequest(`${sys.api.url}/api/v1/knowledge-bases`, { headers: { Authorization: `Bearer ${sys.alice}` } });
    assert.equal(warm.status, 200);
    sys.pg.freeze();
    const calls = Array.from({ length: 10 }, () =>
      httpRequest(`${sys.api.url}/api/v1/knowledge-bases`, { headers: { Authorization: `Bearer ${sys.alice}` }, timeoutMs: 20000 }).then(
        (r) => r.status,
        (e) => (/timeout after/.test(e.message) ? 'hung' : 'closed'),
      ),
    );
    await sleep(500);
    sys.api.signal('SIGTERM');
    await sleep(1000);
    sys.pg.thaw(); // the one request with the connection ends with its statement
    const exit = await sys.api.waitExit(20000);
    assert.equal(exit.code, 0, sys.api.output().slice(-3000));
    const outcomes = await Promise.all(calls);
    assert.ok(!outcomes.includes('hung'), `outcomes: ${outcomes}`);
    assert.ok(outcomes.includes(503), `some waiting request was answered 503: ${outcomes}`);
  });
});
