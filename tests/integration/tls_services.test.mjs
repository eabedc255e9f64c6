/* SPDX-License-Identifier: Apache-2.0 */
// Managed PostgreSQL over TLS, as the production overlay configures it: the URL carries
// sslmode=verify-full and sslrootcert (a CA file), which libpq honours. Here against a
// real PostgreSQL with ssl=on on loopback and a CA made at test time (tests/lib/tls.mjs):
// the api and migrate connect and their sessions are encrypted; a certificate from
// another CA, a host name the certificate does not name, or a missing CA file are
// refused at once with a message that says so (not after a minute of retries).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { httpRequest, migrate, runAlmanac, startAlmanac } from '../lib/almanac.mjs';
import { startPostgres, startRedis } from '../lib/services.mjs';
import { issue, makeCa } from '../lib/tls.mjs';

let pg, redis, ca, other;

before(async () => {
  ca = makeCa();
  other = makeCa('Some Other CA');
  // Names localhost only: connecting by 127.0.0.1 is a host-name mismatch.
  pg = await startPostgres({ ssl: issue(ca, { dns: ['localhost'], ip: [] }) });
  redis = await startRedis();
});
after(async () => {
  await pg?.stop();
  await redis?.stop();
});

const url = (user, { host = 'localhost', mode = 'verify-full', root = ca.caFile } = {}) =>
  `postgresql://${user}@${host}:${pg.port}/almanac?sslmode=${mode}&sslrootcert=${encodeURIComponent(root)}`;
const env = (dbUrl) => ({
  ALMANAC_DATABASE_URL: dbUrl,
  ALMANAC_REDIS_URL: redis.url,
  ALMANAC_JWT_SECRET: 'tls-tests-jwt-secret-0123456789abcdef',
  ALMANAC_READY_REQUIRED: 'postgres,redis',
  ALMANAC_SHUTDOWN_DELAY_MS: '0',
});
const psql = (q) => spawnSync('psql', ['-X', '-A', '-t', '-q', '-d', pg.ownerUrl, '-c', q], { encoding: 'utf8' }).stdout.trim();

test('verify-full with the right CA: migrate and the api connect, over TLS', async () => {
  await migrate(env(url('almanac_owner')));
  const api = await startAlmanac(['api'], { env: env(url('almanac')) });
  try {
    const r = await httpRequest(`${api.url}/ready`);
    assert.equal(r.status, 200, r.body);
    const encrypted = psql(
      "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE s.ssl AND a.usename = 'almanac'",
    );
    assert.ok(Number(encrypted) >= 1, `the api's sessions are encrypted (${encrypted})`);
    const plain = psql("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE NOT s.ssl AND a.usename = 'almanac'");
    assert.equal(plain, '0', 'no session of the api in clear text');
  } finally {
    await api.stop();
  }
});

for (const [what, opts, re] of [
  ['a certificate from another CA', { root: null }, /certificate verify failed/],
  ['a host name the certificate does not name', { host: '127.0.0.1' }, /server certificate for "localhost"( \(and \d+ other names?\))? does not match host name "127.0.0.1"/],
  ['a missing CA file', { root: '/nonexistent/ca.crt' }, /root certificate file "\/nonexistent\/ca.crt" does not exist/],
]) {
  test(`verify-full refuses ${what}, at once and saying why`, async () => {
    const o = { ...opts, root: opts.root === null ? other.caFile : (opts.root ?? ca.caFile) };
    const t0 = Date.now();
    const r = await runAlmanac(['migrate', '--status'], { env: env(url('almanac_owner', o)) });
    const ms = Date.now() - t0;
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /almanac: migrate: cannot connect to the database: /);
    assert.match(r.stderr, re);
    assert.ok(ms < 10000, `refused in ${ms} ms, without waiting for the database to come up`);
  });
}
