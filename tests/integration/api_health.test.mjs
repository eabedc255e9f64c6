/* SPDX-License-Identifier: Apache-2.0 */
// Integration tests of the health endpoints of `almanac api`: /health, /ready,
// /metrics, error bodies, request ids and graceful shutdown, against a real
// PostgreSQL and Redis and the Qdrant stand-in (tests/lib/qdrant-standin.mjs) in its fault modes.
//
// Dependencies are made to fail in the two ways that matter in production:
// refused (nothing listens) and hanging (connection accepted, never answered:
// SIGSTOP for PostgreSQL and Redis, mode "hang" for the Qdrant stand-in).

import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';

import { startPostgres, startRedis, redisCommandStats, countSelect1, freePort, sleep } from '../lib/services.mjs';
import { startQdrantStandin } from '../lib/qdrant-standin.mjs';
import {
  startAlmanac,
  runAlmanac,
  httpRequest,
  waitFor,
  timed,
} from '../lib/almanac.mjs';

const DEPS = ['postgres', 'redis', 'qdrant'];
const checkKey = (dep) => `${dep}:responseTime`;
const READY_TIMEOUT_MS = 1000;

/** The Qdrant stand-in, with the collection the worker would have made (the api only
 * reads it; a missing one would make /ready warn). */
async function startQdrant() {
  const q = await startQdrantStandin();
  q.collections.create('almanac_chunks', 384);
  return q;
}

// ------------------------------------------------------------------ helpers

function describeResponse(r) {
  return `HTTP ${r.status} in ${Math.round(r.ms)} ms: ${r.body}`;
}

const getReady = (api, opts = {}) => httpRequest(`${api.url}/ready`, { timeoutMs: 15000, ...opts });
const getHealth = (api, opts = {}) => httpRequest(`${api.url}/health`, { timeoutMs: 5000, ...opts });

/** Assert the /ready answer follows the contract (shape, types, headers). */
function assertReadyShape(r) {
  assert.match(String(r.headers['content-type']), /^application\/health\+json/, describeResponse(r));
  assert.match(String(r.headers['cache-control']), /no-store/, 'Cache-Control: no-store');
  assert.ok(r.json && typeof r.json === 'object', `JSON body: ${r.body}`);
  assert.ok(['pass', 'warn', 'fail'].includes(r.json.status), `status: ${r.body}`);
  assert.equal(typeof r.json.version, 'string', 'version');
  if (r.json.status === 'fail') assert.equal(r.status, 503, describeResponse(r));
  else assert.equal(r.status, 200, describeResponse(r));
  if (r.json.output === 'shutting down') return; // no check results while draining
  assert.ok(r.json.checks && typeof r.json.checks === 'object', `checks: ${r.body}`);
  for (const dep of DEPS) {
    const arr = r.json.checks[checkKey(dep)];
    assert.ok(Array.isArray(arr) && arr.length >= 1, `${checkKey(dep)} in ${r.body}`);
    const c = arr[0];
    assert.ok(['pass', 'warn', 'fail'].includes(c.status), `${dep} status: ${r.body}`);
    assert.equal(c.componentType, 'datastore', `${dep} componentType`);
    assert.equal(c.observedUnit, 'ms', `${dep} observedUnit`);
    if (c.status !== 'warn' || c.observedValue !== undefined) {
      assert.equal(typeof c.observedValue, 'number', `${dep} observedValue: ${r.body}`);
    }
    assert.equal(typeof c.time, 'string', `${dep} time`);
    assert.ok(!Number.isNaN(Date.parse(c.time)) && /^\d{4}-\d\d-\d\dT/.test(c.time), `${dep} time is ISO 8601: ${c.time}`);
    assert.equal(typeof c.required, 'boolean', `${dep} required`);
    if (c.status === 'pass') assert.equal(c.output, undefined, `${dep} has no output on pass: ${r.body}`);
    else assert.equal(typeof c.output, 'string', `${dep} output on ${c.status}: ${r.body}`);
  }
}

const check = (r, dep) => r.json.checks[checkKey(dep)][0];

async function waitReady200(api, timeoutMs = 10000) {
  return waitFor(
    async () => {
      const r = await getReady(api);
      return r.status === 200 ? r : false;
    },
    { timeoutMs, intervalMs: 100, what: `${api.url}/ready to answer 200` },
  );
}

/**
 * Bring the test database to the schema this binary needs (readiness also checks the
 * schema version), when the binary has a `migrate` command.
 */
async function migrate(pgInst, redisInst) {
  const env = { ALMANAC_DATABASE_URL: pgInst.ownerUrl, ALMANAC_REDIS_URL: redisInst.url };
  const help = await runAlmanac(['migrate', '--help'], { env });
  if (help.code !== 0) return; // no migrate command in this binary
  const r = await runAlmanac(['migrate'], { env, timeoutMs: 90000 });
  assert.equal(r.code, 0, `almanac migrate: ${r.stderr}${r.stdout}`);
}

// ------------------------------------------------------------------ fixture

describe('almanac api health endpoints', { timeout: 170000 }, () => {
  let pg;
  let redis;
  let qd;
  const apis = [];

  before(async () => {
    [pg, redis, qd] = await Promise.all([startPostgres(), startRedis(), startQdrant()]);
    await migrate(pg, redis);
  });

  after(async () => {
    await Promise.all(apis.map((a) => a.stop()));
    await Promise.all([pg?.stop(), redis?.stop(), qd?.close()]);
  });

  // Whatever a test did to the dependencies, the next one starts with all of them up.
  afterEach(async () => {
    await Promise.all(apis.splice(0).map((a) => a.stop()));
    pg.thaw();
    redis.thaw();
    await Promise.all([pg.start(), redis.start(), qd.setMode('ok')]);
  });

  function env(extra = {}) {
    return {
      ALMANAC_ENV: 'development',
      ALMANAC_DATABASE_URL: pg.url,
      ALMANAC_REDIS_URL: redis.url,
      ALMANAC_QDRANT_URL: qd.url,
      ALMANAC_READY_TIMEOUT_MS: String(READY_TIMEOUT_MS),
      ALMANAC_READY_CACHE_MS: '0',
      ALMANAC_SHUTDOWN_DELAY_MS: '0',
      ALMANAC_LOG_LEVEL: 'info',
      ...extra,
    };
  }

  async function api(extraEnv = {}, opts = {}) {
    const a = await startAlmanac(['api'], { env: env(extraEnv), ...opts });
    apis.push(a);
    return a;
  }

  const breakRefused = {
    postgres: () => pg.stop(),
    redis: () => redis.stop(),
    qdrant: () => qd.setMode('down'),
  };
  const breakHang = {
    postgres: async () => pg.freeze(),
    redis: async () => redis.freeze(),
    qdrant: () => qd.setMode('hang'),
  };
  const restore = {
    postgres: async () => {
      pg.thaw();
      await pg.start();
    },
    redis: async () => {
      redis.thaw();
      await redis.start();
    },
    qdrant: () => qd.setMode('ok'),
  };

  test('all dependencies up: /ready 200 pass with every check passing', async () => {
    const a = await api();
    const r = await waitReady200(a);
    assertReadyShape(r);
    assert.equal(r.json.status, 'pass', r.body);
    for (const dep of DEPS) {
      assert.equal(check(r, dep).status, 'pass', `${dep}: ${r.body}`);
      assert.equal(check(r, dep).required, true, `${dep} required by default`);
    }
  });

  for (const dep of DEPS) {
    test(`${dep} refused: /ready 503 within 1 s, then 200 again without restarting the api`, async () => {
      const a = await api();
      await waitReady200(a);
      await breakRefused[dep]();

      const { value: r, ms } = await timed(() => getReady(a));
      assertReadyShape(r);
      assert.equal(r.status, 503, describeResponse(r));
      assert.ok(ms < 1000, `refused ${dep} answered in ${Math.round(ms)} ms (limit 1000): ${r.body}`);
      const c = check(r, dep);
      assert.equal(c.status, 'fail', r.body);
      assert.ok(c.output && !/timeout|timed out/i.test(c.output), `refusal reads differently from a timeout: ${c.output}`);
      for (const other of DEPS.filter((d) => d !== dep)) assert.equal(check(r, other).status, 'pass', `${other}: ${r.body}`);

      await restore[dep]();
      const pid = a.pid;
      const ok = await waitReady200(a, 10000);
      assert.equal(ok.json.status, 'pass', ok.body);
      assert.equal(a.exited, false, 'the api was not restarted');
      assert.equal(a.pid, pid);
    });
  }

  for (const dep of DEPS) {
    test(`${dep} hanging: /ready 503 within timeout + 500 ms naming a timeout, then recovers`, async () => {
      const a = await api();
      await waitReady200(a);
      await breakHang[dep]();

      const { value: r, ms } = await timed(() => getReady(a));
      assertReadyShape(r);
      assert.equal(r.status, 503, describeResponse(r));
      assert.ok(
        ms <= READY_TIMEOUT_MS + 500,
        `hanging ${dep} answered in ${Math.round(ms)} ms (limit ${READY_TIMEOUT_MS + 500}): ${r.body}`,
      );
      const c = check(r, dep);
      assert.equal(c.status, 'fail', r.body);
      assert.match(c.output, /timeout/i, `${dep} output names the timeout: ${r.body}`);
      for (const other of DEPS.filter((d) => d !== dep)) assert.equal(check(r, other).status, 'pass', `${other}: ${r.body}`);

      await restore[dep]();
      const ok = await waitReady200(a, 10000);
      assert.equal(ok.json.status, 'pass', ok.body);
      assert.equal(a.exited, false, 'the api was not restarted');
    });
  }

  test('qdrant answering 503 (not ready): /ready 503, reported unlike a timeout or refusal', async () => {
    const a = await api();
    await waitReady200(a);
    await qd.setMode('notready');
    const { value: r, ms } = await timed(() => getReady(a));
    assertReadyShape(r);
    assert.equal(r.status, 503, describeResponse(r));
    assert.ok(ms < 1000, `answered in ${Math.round(ms)} ms`);
    const c = check(r, 'qdrant');
    assert.equal(c.status, 'fail', r.body);
    assert.ok(!/timeout|refused/i.test(c.output), `a "no" answer reads differently: ${c.output}`);
    await qd.setMode('ok');
    await waitReady200(a);
  });

  test('200 concurrent /ready cost at most two checks per dependency (ALMANAC_READY_CACHE_MS=1000)', async () => {
    // Own dependencies, so that nothing else touches the counters.
    const [p, rd, q] = await Promise.all([startPostgres(), startRedis(), startQdrant()]);
    try {
      await migrate(p, rd);
      const a = await startAlmanac(['api'], {
        env: env({
          ALMANAC_DATABASE_URL: p.url,
          ALMANAC_REDIS_URL: rd.url,
          ALMANAC_QDRANT_URL: q.url,
          ALMANAC_READY_CACHE_MS: '1000',
        }),
      });
      apis.push(a);
      await waitReady200(a);

      const counts = () => ({
        postgres: countSelect1(p.logText()),
        redis: redisCommandStats(rd.port).ping || 0,
        qdrant: q.readyzCount,
      });
      const delta = (x, y) => Object.fromEntries(DEPS.map((d) => [d, y[d] - x[d]]));

      await sleep(1200); // let the warm-up result expire: the burst must check afresh
      const c0 = counts();
      const rs = await Promise.all(Array.from({ length: 200 }, () => getReady(a, { timeoutMs: 20000 })));
      const c1 = counts();
      const bad = rs.filter((r) => r.status !== 200);
      assert.equal(bad.length, 0, `all 200: ${bad.slice(0, 3).map(describeResponse).join(' | ')}`);
      const burst = delta(c0, c1);
      for (const dep of DEPS) {
        assert.ok(burst[dep] >= 1, `${dep} was checked by the burst: ${JSON.stringify(burst)}`);
        assert.ok(burst[dep] <= 2, `${dep} checked at most twice for 200 concurrent probes: ${JSON.stringify(burst)}`);
      }

      // The counters do see checks: after the TTL one probe costs exactly one more.
      await sleep(1200);
      const c2 = counts();
      const r = await getReady(a);
      assert.equal(r.status, 200, describeResponse(r));
      const one = delta(c2, counts());
      assert.deepEqual(one, { postgres: 1, redis: 1, qdrant: 1 }, 'exactly one check per dependency after the TTL');
    } finally {
      await Promise.all([p.stop(), rd.stop(), q.close()]);
    }
  });

  test('/health stays 200 while every dependency is down or hanging', async () => {
    const a = await api();
    await waitReady200(a);
    pg.freeze();
    redis.freeze();
    await qd.setMode('hang');
    const slowReady = getReady(a); // a round in flight must not block liveness
    for (let i = 0; i < 5; i++) {
      const r = await getHealth(a);
      assert.equal(r.status, 200, describeResponse(r));
      assert.ok(r.ms < 500, `/health answered in ${Math.round(r.ms)} ms`);
      assert.match(String(r.headers['content-type']), /^application\/health\+json/);
      assert.equal(r.json.status, 'pass', r.body);
      assert.equal(typeof r.json.version, 'string');
      assert.equal(typeof r.json.uptime_s, 'number');
    }
    const r = await slowReady;
    assert.equal(r.status, 503, describeResponse(r));

    // Refused rather than hanging: the same.
    pg.thaw();
    redis.thaw();
    await Promise.all([pg.stop(), redis.stop(), qd.setMode('down')]);
    const r2 = await getReady(a);
    assert.equal(r2.status, 503, describeResponse(r2));
    for (const dep of DEPS) assert.equal(check(r2, dep).status, 'fail', r2.body);
    const h = await getHealth(a);
    assert.equal(h.status, 200, describeResponse(h));
  });

  for (const dep of DEPS) {
    test(`${dep} down when the api starts: it starts, /ready 503, then 200 once ${dep} is up`, async () => {
      await breakRefused[dep]();
      const a = await api(); // waits for /health 200
      const r = await getReady(a);
      assertReadyShape(r);
      assert.equal(r.status, 503, describeResponse(r));
      assert.equal(check(r, dep).status, 'fail', r.body);
      await restore[dep]();
      await waitReady200(a, 10000);
      assert.equal(a.exited, false);
    });
  }

  test('Qdrant not configured in development: /ready 200 with status warn', async () => {
    const sent = qd.requests.length;
    const a = await api({ ALMANAC_QDRANT_URL: undefined });
    const r = await waitReady200(a);
    assert.equal(r.json.status, 'warn', r.body);
    assert.equal(check(r, 'qdrant').status, 'warn', r.body);
    assert.equal(check(r, 'postgres').status, 'pass', r.body);
    assert.equal(qd.requests.length, sent, 'an api without ALMANAC_QDRANT_URL sends Qdrant nothing');
  });

  test('ALMANAC_READY_REQUIRED=postgres,redis: Qdrant down only warns', async () => {
    const a = await api({ ALMANAC_READY_REQUIRED: 'postgres,redis' });
    await waitReady200(a);
    await qd.setMode('down');
    const r = await getReady(a);
    assert.equal(r.status, 200, describeResponse(r));
    assert.equal(r.json.status, 'warn', r.body);
    assert.equal(check(r, 'qdrant').required, false, r.body);
    assert.notEqual(check(r, 'qdrant').status, 'pass', r.body);
  });

  test('SIGTERM during a slow request: /ready 503 "shutting down" at once, the request completes, exit 0', async () => {
    const a = await api({ ALMANAC_READY_TIMEOUT_MS: '2000', ALMANAC_SHUTDOWN_DELAY_MS: '500' });
    await waitReady200(a); // Qdrant's connection is up; from now on it hangs
    await qd.setMode('hang');
    const before = qd.readyzCount;
    const slow = timed(() => getReady(a, { timeoutMs: 15000 }));
    slow.catch(() => {}); // awaited below
    await waitFor(() => qd.readyzCount > before, { timeoutMs: 5000, intervalMs: 10, what: 'the slow /ready to reach Qdrant' });

    assert.ok(a.signal('SIGTERM'));
    await sleep(50); // signal delivery is asynchronous; 50 ms is "at once" for a probe
    const { value: r, ms } = await timed(() => getReady(a, { timeoutMs: 5000 }));
    assert.equal(r.status, 503, describeResponse(r));
    assert.equal(r.json?.status, 'fail', r.body);
    assert.match(String(r.json?.output), /shutting down/, r.body);
    assert.ok(ms < 1000, `the draining /ready answered in ${Math.round(ms)} ms without waiting for checks`);
    const h = await getHealth(a);
    assert.equal(h.status, 200, `/health while draining: ${describeResponse(h)}`);

    const { value: s } = await slow;
    assert.ok(s.complete, 'the slow request got a complete HTTP answer');
    assert.ok([200, 503].includes(s.status), describeResponse(s));
    assert.ok(s.json && s.json.status, `the slow answer is a full JSON body: ${s.body}`);

    const ex = await a.waitExit(15000);
    assert.deepEqual({ code: ex.code, signal: ex.signal }, { code: 0, signal: null }, a.output());
  });

  test('a second SIGTERM during the drain exits promptly', async () => {
    const a = await api({ ALMANAC_READY_TIMEOUT_MS: '5000', ALMANAC_SHUTDOWN_DELAY_MS: '500' });
    await waitReady200(a);
    await qd.setMode('hang');
    const before = qd.readyzCount;
    const slow = getReady(a, { timeoutMs: 15000 }).catch((e) => e);
    await waitFor(() => qd.readyzCount > before, { timeoutMs: 5000, intervalMs: 10, what: 'the slow /ready to reach Qdrant' });
    assert.ok(a.signal('SIGTERM'));
    await sleep(800); // past ALMANAC_SHUTDOWN_DELAY_MS: draining, the slow request still in flight
    assert.equal(a.exited, false, `still draining after the first signal: ${a.output()}`);
    const t0 = performance.now();
    assert.ok(a.signal('SIGTERM'));
    const ex = await a.waitExit(5000);
    const ms = performance.now() - t0;
    assert.ok(ms < 1500, `exited ${Math.round(ms)} ms after the second signal`);
    assert.equal(ex.signal, null, `exited by itself, not killed by ${ex.signal}`);
    await slow;
  });

  test('/metrics: Prometheus text with build info, HTTP and readiness metrics', async () => {
    const a = await api();
    await waitReady200(a);
    await getHealth(a);
    await httpRequest(`${a.url}/no-such-route`);
    const r = await httpRequest(`${a.url}/metrics`);
    assert.equal(r.status, 200, describeResponse(r));
    assert.match(String(r.headers['content-type']), /^text\/plain/, 'Prometheus text content type');
    for (const name of [
      'almanac_build_info',
      'almanac_http_requests_total',
      'almanac_http_request_duration_seconds_bucket',
      'almanac_ready_check_up',
    ]) {
      assert.match(r.body, new RegExp(`^${name}(\\{[^}]*\\})? `, 'm'), `${name} sample in:\n${r.body}`);
    }
    // Every line is a comment or a well-formed sample.
    const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?([0-9.eE+-]+|\+Inf|-Inf|NaN)( -?\d+)?$/;
    for (const line of r.body.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      assert.match(line, sample, `malformed metrics line: ${line}`);
    }
    assert.match(r.body, /^almanac_ready_check_up\{[^}]*postgres[^}]*\} 1$/m, 'postgres check up after a passing /ready');
  });

  test('unknown route: 404 with a JSON error body', async () => {
    const a = await api();
    const r = await httpRequest(`${a.url}/no/such/route?x=1`);
    assert.equal(r.status, 404, describeResponse(r));
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.ok(r.json?.error, r.body);
    assert.equal(r.json.error.code, 'not_found', r.body);
    assert.equal(typeof r.json.error.message, 'string', r.body);
    assert.equal(typeof r.json.error.request_id, 'string', r.body);
    assert.equal(r.json.error.request_id, r.headers['x-request-id'], 'request_id matches X-Request-Id');
  });

  test('every response carries X-Request-Id; a valid incoming one is echoed', async () => {
    const a = await api();
    await waitReady200(a);
    const paths = ['/health', '/ready', '/metrics', '/no-such-route'];
    const seen = new Set();
    for (const p of paths) {
      const r = await httpRequest(`${a.url}${p}`);
      const id = r.headers['x-request-id'];
      assert.ok(typeof id === 'string' && id.length > 0, `${p}: X-Request-Id present`);
      seen.add(id);
      const e = await httpRequest(`${a.url}${p}`, { headers: { 'X-Request-Id': 'abc-123' } });
      assert.equal(e.headers['x-request-id'], 'abc-123', `${p}: incoming id echoed`);
    }
    assert.equal(seen.size, paths.length, 'generated ids differ per request');
  });

  test('almanac healthcheck: 0 on 2xx, 1 otherwise', async () => {
    const a = await api();
    const ok = await runAlmanac(['healthcheck', `${a.url}/health`]);
    assert.equal(ok.code, 0, ok.stderr);
    const notFound = await runAlmanac(['healthcheck', `${a.url}/no-such-route`]);
    assert.equal(notFound.code, 1, notFound.stderr);
    const port = await freePort(); // nothing listens there
    const refused = await runAlmanac(['healthcheck', `http://127.0.0.1:${port}/health`]);
    assert.equal(refused.code, 1, refused.stderr);
    const byListen = await runAlmanac(['healthcheck'], { env: { ALMANAC_LISTEN: `127.0.0.1:${a.port}` } });
    assert.equal(byListen.code, 0, byListen.stderr);
  });
});

// The statement log is what the burst test counts with: make sure it is there.
test('harness: PostgreSQL statement log records SELECT 1', async () => {
  const p = await startPostgres();
  try {
    const { execFileSync } = await import('node:child_process');
    execFileSync('psql', [p.url, '-tAc', 'SELECT 1'], { timeout: 10000 });
    assert.equal(countSelect1(p.logText()), 1, p.logText());
    assert.ok(fs.existsSync(p.dir));
  } finally {
    await p.stop();
  }
});
