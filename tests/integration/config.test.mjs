/* SPDX-License-Identifier: Apache-2.0 */
// Integration tests of Almanac's configuration handling: `almanac check-config`,
// refusal to start with a bad production configuration, and secrets never showing
// up in output, HTTP answers or the process's command line.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { freePort, sleep } from '../lib/services.mjs';
import { startQdrantStandin } from '../lib/qdrant-standin.mjs';
import { startAlmanac, runAlmanac, httpRequest, canConnect } from '../lib/almanac.mjs';

const SETTINGS = [
  'ALMANAC_ENV',
  'ALMANAC_LISTEN',
  'ALMANAC_DATABASE_URL',
  'ALMANAC_REDIS_URL',
  'ALMANAC_QDRANT_URL',
  'ALMANAC_QDRANT_API_KEY',
  'ALMANAC_JWT_SECRET',
  'ALMANAC_EMBEDDINGS_URL',
  'ALMANAC_EMBEDDINGS_MODEL',
  'ALMANAC_EMBEDDINGS_API_KEY',
  'ALMANAC_READY_TIMEOUT_MS',
  'ALMANAC_READY_CACHE_MS',
  'ALMANAC_READY_REQUIRED',
  'ALMANAC_LOG_LEVEL',
  'ALMANAC_SHUTDOWN_DELAY_MS',
  'ALMANAC_SHUTDOWN_TIMEOUT_MS',
];

const EX_CONFIG = 78;

// A production configuration that passes: each test breaks one or more parts of it.
const GOOD_JWT = 'Qm9vdHN0cmFwLXByb2Qtand0LWtleS1mb3ItdGVzdHM'; // 43 bytes, not on any deny-list
const PROD = Object.freeze({
  ALMANAC_ENV: 'production',
  ALMANAC_DATABASE_URL: 'postgresql://almanac:Vq7mZp2Lr9Ts4Wx8@127.0.0.1:5432/almanac',
  ALMANAC_REDIS_URL: 'redis://:Hy3nKd8Rb6Fj1Gc5@127.0.0.1:6379/0',
  ALMANAC_QDRANT_URL: 'http://127.0.0.1:6333',
  ALMANAC_JWT_SECRET: GOOD_JWT,
});

/** The lines of stderr that report a problem, i.e. that name an ALMANAC_ variable. */
function problemLines(stderr) {
  return stderr.split('\n').filter((l) => /ALMANAC_[A-Z_]+/.test(l));
}

/** Lines naming exactly `name` (ALMANAC_JWT_SECRET does not match ALMANAC_JWT_SECRET_FILE). */
function linesNaming(stderr, name, { orFile = false } = {}) {
  const re = new RegExp(`\\b${name}${orFile ? '(_FILE)?' : ''}(?![A-Z_])`);
  return problemLines(stderr).filter((l) => re.test(l));
}

function show(r) {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

describe('almanac check-config', { timeout: 120000 }, () => {
  let tmp;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'almanac-config-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const file = (name, content) => {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, content, { mode: 0o600 });
    return p;
  };

  test('a complete production configuration passes (control)', async () => {
    const r = await runAlmanac(['check-config'], { env: PROD });
    assert.equal(r.code, 0, show(r));
  });

  test('production without ALMANAC_JWT_SECRET: exit 78 naming it', async () => {
    const r = await runAlmanac(['check-config'], { env: { ...PROD, ALMANAC_JWT_SECRET: undefined } });
    assert.equal(r.code, EX_CONFIG, show(r));
    assert.ok(linesNaming(r.stderr, 'ALMANAC_JWT_SECRET', { orFile: true }).length >= 1, show(r));
  });

  test('production refuses a missing, short or denied database or Redis password (URL, variable or file)', async () => {
    const noPw = { ...PROD, ALMANAC_DATABASE_URL: 'postgresql://almanac@127.0.0.1:5432/almanac', ALMANAC_REDIS_URL: 'redis://127.0.0.1:6379/0' };
    let r = await runAlmanac(['check-config'], { env: noPw });
    assert.equal(r.code, EX_CONFIG, show(r));
    assert.equal(linesNaming(r.stderr, 'ALMANAC_DATABASE_PASSWORD').length, 1, show(r));
    assert.equal(linesNaming(r.stderr, 'ALMANAC_REDIS_PASSWORD').length, 1, show(r));
    assert.doesNotMatch(r.stdout, /configuration ok/);
    // "abc" as the issue found it accepted, once in the URL and once in a file
    const abc = file('pw-abc', 'abc\n');
    r = await runAlmanac(['check-config'], {
      env: { ...noPw, ALMANAC_DATABASE_URL: 'postgresql://almanac:abc@127.0.0.1:5432/almanac', ALMANAC_REDIS_PASSWORD_FILE: abc },
    });
    assert.equal(r.code, EX_CONFIG, show(r));
    assert.match(r.stderr, /ALMANAC_DATABASE_URL: must be at least 16 bytes in production/);
    assert.match(r.stderr, /ALMANAC_REDIS_PASSWORD: must be at least 16 bytes in production/);
    assert.ok(!/\babc\b/.test(r.stderr + r.stdout), 'the value is never printed');
    // a denied one of 16 bytes or more, and exactly 16 random bytes passing
    r = await runAlmanac(['check-config'], { env: { ...noPw, ALMANAC_DATABASE_PASSWORD: 'almanac-dev-password', ALMANAC_REDIS_PASSWORD: 'Zt4kQ9wVb2Np7Lx3' } });
    assert.equal(r.code, EX_CONFIG, show(r));
    assert.match(r.stderr, /ALMANAC_DATABASE_PASSWORD: a known insecure default/);
    assert.equal(problemLines(r.stderr).length, 1, show(r));
  });

  test('production requires the Qdrant and embeddings API keys when their URLs are not on loopback', async () => {
    const env = { ...PROD, ALMANAC_QDRANT_URL: 'http://qdrant:6333', ALMANAC_EMBEDDINGS_URL: 'https://embed.example.com/v1' };
    let r = await runAlmanac(['check-config'], { env });
    assert.equal(r.code, EX_CONFIG, show(r));
    assert.match(r.stderr, /ALMANAC_QDRANT_API_KEY: required in production when ALMANAC_QDRANT_URL is not on loopback/);
    assert.match(r.stderr, /ALMANAC_EMBEDDINGS_API_KEY: required in production when ALMANAC_EMBEDDINGS_URL is not on loopback/);
    const key = file('qdrant-key', 'Qk-0123456789abcdef0123\n');
    r = await runAlmanac(['check-config'], { env: { ...env, ALMANAC_QDRANT_API_KEY_FILE: key, ALMANAC_EMBEDDINGS_API_KEY: 'Ek-0123456789abcdef0123' } });
    assert.equal(r.code, 0, show(r)); // a Compose service name over plain http is the project's own network
  });

  test('development without ALMANAC_JWT_SECRET is fine', async () => {
    const r = await runAlmanac(['check-config'], {
      env: { ...PROD, ALMANAC_ENV: 'development', ALMANAC_JWT_SECRET: undefined, ALMANAC_QDRANT_URL: undefined },
    });
    assert.equal(r.code, 0, show(r));
  });

  test('several problems at once (denied secret in _FILE, missing, out of range, bad enum): one line each', async () => {
    const denied = file('jwt-denied', 'change-me-in-production');
    const r = await runAlmanac(['check-config'], {
      env: {
        ...PROD,
        ALMANAC_JWT_SECRET: undefined,
        ALMANAC_JWT_SECRET_FILE: denied,
        ALMANAC_QDRANT_URL: undefined,
        ALMANAC_READY_TIMEOUT_MS: '99999',
        ALMANAC_LOG_LEVEL: 'verbose',
      },
    });
    assert.equal(r.code, EX_CONFIG, show(r));
    const vars = ['ALMANAC_QDRANT_URL', 'ALMANAC_READY_TIMEOUT_MS', 'ALMANAC_LOG_LEVEL'];
    for (const v of vars) assert.ok(linesNaming(r.stderr, v).length >= 1, `${v} reported:\n${show(r)}`);
    assert.ok(linesNaming(r.stderr, 'ALMANAC_JWT_SECRET', { orFile: true }).length >= 1, `JWT secret reported:\n${show(r)}`);
    // One problem per line: no line names two of the broken settings.
    for (const l of problemLines(r.stderr)) {
      const named = [...vars, 'ALMANAC_JWT_SECRET'].filter((v) => new RegExp(`\\b${v}(_FILE)?(?![A-Z_])`).test(l));
      assert.ok(named.length <= 1, `one problem per line, got ${named.join(', ')} in: ${l}`);
    }
    assert.ok(!r.stderr.includes('change-me-in-production') && !r.stdout.includes('change-me-in-production'), 'secret value never printed');
  });

  test('several problems at once (missing URL, wrong scheme, short secret, bad URL, negative number)', async () => {
    const r = await runAlmanac(['check-config'], {
      env: {
        ...PROD,
        ALMANAC_DATABASE_URL: undefined,
        ALMANAC_REDIS_URL: 'http://127.0.0.1:6379/0',
        ALMANAC_JWT_SECRET: 'Zx81-short-secret',
        ALMANAC_EMBEDDINGS_URL: 'not a url',
        ALMANAC_READY_CACHE_MS: '-5',
      },
    });
    assert.equal(r.code, EX_CONFIG, show(r));
    for (const v of ['ALMANAC_DATABASE_URL', 'ALMANAC_REDIS_URL', 'ALMANAC_JWT_SECRET', 'ALMANAC_EMBEDDINGS_URL', 'ALMANAC_READY_CACHE_MS']) {
      assert.ok(linesNaming(r.stderr, v).length >= 1, `${v} reported:\n${show(r)}`);
    }
    assert.ok(!r.stderr.includes('Zx81-short-secret'), 'secret value never printed');
  });

  test('ALMANAC_JWT_SECRET and ALMANAC_JWT_SECRET_FILE both set: exit 78 naming both', async () => {
    const f = file('jwt-both', GOOD_JWT);
    const r = await runAlmanac(['check-config'], { env: { ...PROD, ALMANAC_JWT_SECRET_FILE: f } });
    assert.equal(r.code, EX_CONFIG, show(r));
    const lines = problemLines(r.stderr).join('\n');
    assert.match(lines, /\bALMANAC_JWT_SECRET_FILE\b/, show(r));
    assert.match(lines, /\bALMANAC_JWT_SECRET(?![A-Z_])/, show(r));
    assert.ok(!r.stderr.includes(GOOD_JWT));
  });

  test('a _FILE naming a missing file: exit 78 naming the _FILE variable', async () => {
    for (const name of ['ALMANAC_JWT_SECRET', 'ALMANAC_DATABASE_URL']) {
      const env = { ...PROD, [name]: undefined, [`${name}_FILE`]: path.join(tmp, `missing-${name}`) };
      const r = await runAlmanac(['check-config'], { env });
      assert.equal(r.code, EX_CONFIG, `${name}_FILE: ${show(r)}`);
      assert.ok(linesNaming(r.stderr, `${name}_FILE`).length >= 1, show(r));
    }
  });

  test('a secret read from _FILE (trailing newline stripped) passes', async () => {
    const f = file('jwt-good', `${GOOD_JWT}\n`);
    const r = await runAlmanac(['check-config'], { env: { ...PROD, ALMANAC_JWT_SECRET: undefined, ALMANAC_JWT_SECRET_FILE: f } });
    assert.equal(r.code, 0, show(r));
  });

  test('production JWT secret shorter than 32 bytes: exit 78; 32 bytes pass', async () => {
    const s31 = 'k'.repeat(7) + 'Tq4Vn8Wz2Xb6Yc0Rd3Sf5Gh'.padEnd(24, 'p'); // 31 bytes
    assert.equal(Buffer.byteLength(s31), 31);
    const short = await runAlmanac(['check-config'], { env: { ...PROD, ALMANAC_JWT_SECRET: s31 } });
    assert.equal(short.code, EX_CONFIG, show(short));
    assert.ok(linesNaming(short.stderr, 'ALMANAC_JWT_SECRET').length >= 1, show(short));
    assert.ok(!short.stderr.includes(s31), 'value never printed');
    const ok = await runAlmanac(['check-config'], { env: { ...PROD, ALMANAC_JWT_SECRET: `${s31}m` } });
    assert.equal(ok.code, 0, `32 bytes are enough: ${show(ok)}`);
  });

  test('--list prints every setting', async () => {
    const r = await runAlmanac(['check-config', '--list']);
    assert.equal(r.code, 0, show(r));
    for (const name of SETTINGS) {
      assert.match(r.stdout, new RegExp(`\\b${name}(?![A-Z_])`), `${name} listed:\n${r.stdout}`);
    }
  });

  test('unknown command or option: exit 64', async () => {
    const r = await runAlmanac(['no-such-command']);
    assert.equal(r.code, 64, show(r));
  });

  test('almanac api in production without a JWT secret: exit 78 without listening', async () => {
    const port = await freePort();
    const a = await startAlmanac(['api'], {
      env: { ...PROD, ALMANAC_JWT_SECRET: undefined, ALMANAC_LISTEN: `127.0.0.1:${port}` },
      waitHealth: false,
    });
    try {
      let listened = false;
      const deadline = Date.now() + 10000;
      while (!a.exited && Date.now() < deadline) {
        if (await canConnect(port, 100)) listened = true;
        await sleep(5);
      }
      const ex = await a.waitExit(5000);
      assert.equal(ex.code, EX_CONFIG, a.output());
      assert.equal(listened, false, 'never accepted a connection');
      assert.match(a.stderr(), /ALMANAC_JWT_SECRET/, a.output());
    } finally {
      await a.stop();
    }
  });
});

// ---------------------------------------------------------------- secrets

const SENTINEL = 'SENTINEL';
const SECRETS = {
  jwt: 'jwt-SENTINEL-7f3a9c1e5b2d8f4a6c0e9b3d7a2',
  pg: 'pgpw-SENTINEL-4b1d8e2c6f',
  redis: 'rdpw-SENTINEL-9c2f6a1d3e',
  qdrant: 'qk-SENTINEL-3e7b0d5a8c',
  embed: 'ek-SENTINEL-8a5c1f2b7d',
};

function assertNoSentinel(where, text) {
  const s = String(text);
  const i = s.indexOf(SENTINEL);
  assert.equal(i, -1, `a secret leaked into ${where}: …${s.slice(Math.max(0, i - 80), i + 40)}…`);
}

describe('secrets never leak', { timeout: 120000 }, () => {
  test('almanac api: not in logs, HTTP answers or /proc/PID/cmdline', async () => {
    assert.equal(SECRETS.jwt.length, 40);
    const [pgPort, redisPort, embedPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const qd = await startQdrantStandin({ apiKey: SECRETS.qdrant, mode: 'notready' });
    let a;
    try {
      a = await startAlmanac(['api'], {
        env: {
          ALMANAC_ENV: 'development',
          ALMANAC_LOG_LEVEL: 'debug',
          ALMANAC_JWT_SECRET: SECRETS.jwt,
          // Nothing listens on these ports: connection errors get logged.
          ALMANAC_DATABASE_URL: `postgresql://almanac:${SECRETS.pg}@127.0.0.1:${pgPort}/almanac`,
          ALMANAC_REDIS_URL: `redis://:${SECRETS.redis}@127.0.0.1:${redisPort}/0`,
          ALMANAC_QDRANT_URL: qd.url,
          ALMANAC_QDRANT_API_KEY: SECRETS.qdrant,
          ALMANAC_EMBEDDINGS_URL: `http://127.0.0.1:${embedPort}/v1`,
          ALMANAC_EMBEDDINGS_API_KEY: SECRETS.embed,
          ALMANAC_READY_TIMEOUT_MS: '500',
          ALMANAC_READY_CACHE_MS: '0',
          ALMANAC_SHUTDOWN_DELAY_MS: '0',
        },
      });
      const cmdline = fs.readFileSync(`/proc/${a.pid}/cmdline`, 'utf8');
      assertNoSentinel('/proc/PID/cmdline', cmdline);

      const answers = [];
      for (const p of ['/ready', '/health', '/metrics', '/no-such-route', '/ready']) {
        answers.push([p, await httpRequest(`${a.url}${p}`)]);
      }
      const ready = answers[0][1];
      assert.equal(ready.status, 503, ready.body);
      for (const [p, r] of answers) {
        assertNoSentinel(`the body of ${p}`, r.body);
        assertNoSentinel(`the headers of ${p}`, r.rawHeaders.join('\n'));
      }
      // The failures were logged (otherwise the test would prove little).
      assert.match(a.output(), /postgres|redis|qdrant/i, `dependency failures logged:\n${a.output()}`);
      assertNoSentinel('/proc/PID/cmdline (later)', fs.readFileSync(`/proc/${a.pid}/cmdline`, 'utf8'));

      a.signal('SIGTERM');
      const ex = await a.waitExit(15000);
      assert.equal(ex.code, 0, a.output());
      assertNoSentinel('stdout', a.stdout());
      assertNoSentinel('stderr', a.stderr());
      // The api key does go to Qdrant (that is where it belongs): sanity of the setup.
      assert.ok(qd.readyzCount >= 1, 'Qdrant was probed');
      const keyed = qd.requests.filter((q) => q.path.startsWith('/collections/'));
      assert.ok(keyed.length >= 1 && keyed.every((q) => q.status !== 401), `Qdrant got the api key: ${JSON.stringify(qd.requests)}`);
    } finally {
      await a?.stop();
      await qd.close();
    }
  });

  test('almanac check-config: invalid configurations name variables, never secret values', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'almanac-secrets-'));
    try {
      const qkFile = path.join(tmp, 'qdrant-key');
      fs.writeFileSync(qkFile, SECRETS.qdrant);
      const embedFile = path.join(tmp, 'embed-key');
      fs.writeFileSync(embedFile, `${SECRETS.embed}\n`);
      const cases = {
        'valid secrets, invalid value elsewhere': {
          ALMANAC_ENV: 'production',
          ALMANAC_JWT_SECRET: SECRETS.jwt,
          ALMANAC_DATABASE_URL: `postgresql://almanac:${SECRETS.pg}@127.0.0.1:5432/almanac`,
          ALMANAC_REDIS_URL: `redis://:${SECRETS.redis}@127.0.0.1:6379/0`,
          ALMANAC_QDRANT_URL: 'http://127.0.0.1:6333',
          ALMANAC_QDRANT_API_KEY: SECRETS.qdrant,
          ALMANAC_EMBEDDINGS_API_KEY_FILE: embedFile,
          ALMANAC_READY_TIMEOUT_MS: 'abc',
        },
        'the secrets themselves invalid': {
          ALMANAC_ENV: 'production',
          ALMANAC_JWT_SECRET: 'jwt-SENTINEL-short', // too short
          ALMANAC_DATABASE_URL: `postgresql://almanac:${SECRETS.pg}@127.0.0.1:notaport/almanac`,
          ALMANAC_REDIS_URL: `bogus://:${SECRETS.redis}@127.0.0.1:6379/0`,
          ALMANAC_QDRANT_URL: 'http://127.0.0.1:6333',
          ALMANAC_QDRANT_API_KEY_FILE: qkFile,
          ALMANAC_EMBEDDINGS_API_KEY: SECRETS.embed,
          ALMANAC_EMBEDDINGS_API_KEY_FILE: embedFile, // both set
        },
      };
      for (const [name, env] of Object.entries(cases)) {
        const r = await runAlmanac(['check-config'], { env });
        assert.equal(r.code, EX_CONFIG, `${name}: ${show(r)}`);
        assert.ok(problemLines(r.stderr).length >= 1, `${name}: ${show(r)}`);
        assertNoSentinel(`check-config stdout (${name})`, r.stdout);
        assertNoSentinel(`check-config stderr (${name})`, r.stderr);
      }
      // Listing the settings never shows the values of the environment either.
      const list = await runAlmanac(['check-config', '--list'], { env: cases['valid secrets, invalid value elsewhere'] });
      assertNoSentinel('check-config --list', list.stdout + list.stderr);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
