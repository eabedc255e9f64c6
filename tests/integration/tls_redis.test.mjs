/* SPDX-License-Identifier: Apache-2.0 */
// Managed Redis over TLS: rediss:// with an ACL user name, the certificate verified
// against ?cacert=FILE and the host name (src/redis_tls.c; Debian's hiredis 0.14 has no
// TLS of its own). Here against redis-server --tls-port on loopback with a CA made at
// test time: the api and `almanac jobs` work over it as the ACL user, and a certificate
// from another CA, a host name it does not name, a missing CA file or plain redis://
// to the TLS port are refused at once, saying why.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { httpRequest, migrate, runAlmanac, startAlmanac } from '../lib/almanac.mjs';
import { redisCli, startPostgres, startRedis } from '../lib/services.mjs';
import { issue, makeCa } from '../lib/tls.mjs';

const PASSWORD = 'acl-user-password-0123456789';
let pg, redis, ca, other;

before(async () => {
  ca = makeCa();
  other = makeCa('Some Other CA');
  redis = await startRedis({ tls: { ...issue(ca, { dns: ['localhost'], ip: [] }), ca: ca.cert } });
  redisCli(redis.port, 'ACL', 'SETUSER', 'almanac', 'on', `>${PASSWORD}`, '~*', '&*', '+@all');
  pg = await startPostgres();
});
after(async () => {
  await redis?.stop();
  await pg?.stop();
});

const url = ({ host = 'localhost', root = ca.caFile, scheme = 'rediss' } = {}) =>
  `${scheme}://almanac@${host}:${redis.tlsPort}/0${root ? `?cacert=${root}` : ''}`;
const env = (redisUrl) => ({
  ALMANAC_DATABASE_URL: pg.url,
  ALMANAC_REDIS_URL: redisUrl,
  ALMANAC_REDIS_PASSWORD: PASSWORD,
  ALMANAC_JWT_SECRET: 'tls-tests-jwt-secret-0123456789abcdef',
  ALMANAC_READY_REQUIRED: 'postgres,redis',
  ALMANAC_SHUTDOWN_DELAY_MS: '0',
});

test('rediss:// with the right CA: jobs stats and the api work, as the ACL user', async () => {
  const r = await runAlmanac(['jobs', 'stats'], { env: env(url()) });
  assert.equal(r.code, 0, r.stderr);
  await migrate(env(url()));
  const api = await startAlmanac(['api'], { env: env(url()) });
  try {
    const ready = await httpRequest(`${api.url}/ready`);
    assert.equal(ready.status, 200, ready.body);
    const clients = redisCli(redis.port, 'CLIENT', 'LIST');
    assert.match(clients, /user=almanac/, 'the api is connected as the ACL user');
    // A burst of commands through one relayed connection: sign-in attempts use Redis.
    for (let i = 0; i < 20; i++) {
      const s = await httpRequest(`${api.url}/api/v1/auth/login`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ email: `nobody${i}@example.org`, password: 'wrong-password-123' }),
      });
      assert.ok([401, 429].includes(s.status), `${s.status} ${s.body}`);
    }
    assert.equal((await httpRequest(`${api.url}/ready`)).status, 200);
  } finally {
    await api.stop();
  }
});

for (const [what, opts, re] of [
  ['a certificate from another CA', { root: 'OTHER' }, /TLS: certificate verify failed: (unable to get local issuer certificate|certificate signature failure|self.signed)/],
  ['a host name the certificate does not name', { host: '127.0.0.1' }, /TLS: certificate verify failed: (hostname mismatch|IP address mismatch)/],
  ['a missing CA file', { root: '/nonexistent/ca.crt' }, /TLS: cannot read the CA file \/nonexistent\/ca.crt/],
  ['plain redis:// to the TLS port', { scheme: 'redis', root: null }, /cannot reach redis: /],
]) {
  test(`rediss:// refuses ${what}, at once and saying why`, async () => {
    const o = { ...opts, root: opts.root === 'OTHER' ? other.caFile : opts.root === undefined ? ca.caFile : opts.root };
    const t0 = Date.now();
    const r = await runAlmanac(['jobs', 'stats'], { env: env(url(o)), timeoutMs: 20000 });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /almanac: jobs: cannot reach redis: /);
    assert.match(r.stderr, re);
    assert.ok(Date.now() - t0 < 8000, `refused in ${Date.now() - t0} ms`);
  });
}
