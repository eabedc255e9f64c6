/* SPDX-License-Identifier: Apache-2.0 */
// The roles: the services' role (pg.url, the application role of production) has no DDL
// rights; migrations run as the owner.
//
// `almanac migrate` as PID 1 (as in a Kubernetes Job or any container) exits on SIGTERM
// at once instead of being killed after the grace period: as PID 1 a signal's default
// action is dropped, so the command handles it. The migrator is made to wait on the
// migration lock (held by another session), then SIGTERM'd inside its own PID namespace;
// PostgreSQL must see its session end, and a later migrate must finish the work.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { ALMANAC_BIN, migrate, requireBinary, runAlmanac, waitFor } from '../lib/almanac.mjs';
import { startPostgres } from '../lib/services.mjs';

const LOCK = '7019811101098109'; // src/schema.c MIGRATION_LOCK_KEY

const psql = (url, q) =>
  spawnSync('psql', ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', q], { encoding: 'utf8' });

test('migrate as PID 1 exits on SIGTERM within a second, its lock wait ended', async () => {
  requireBinary(); // run under unshare, not through runAlmanac
  const pg = await startPostgres();
  after(() => pg.stop());
  const env = { ALMANAC_DATABASE_URL: pg.ownerUrl, ALMANAC_REDIS_URL: 'redis://127.0.0.1:1/0' };

  // Another migrator holds the lock for as long as this session is open.
  const holder = spawn('psql', ['-X', '-q', '-d', pg.url], { stdio: ['pipe', 'ignore', 'inherit'] });
  after(() => holder.kill('SIGKILL'));
  holder.stdin.write(`SELECT pg_advisory_lock(${LOCK});\n`);
  await waitFor(() => psql(pg.url, 'SELECT count(*) FROM pg_locks WHERE locktype = \'advisory\' AND granted').stdout.trim() === '1',
    { what: 'the lock holder' });

  // unshare: the migrator is PID 1 of a new PID namespace (as root here; else as a mapped root).
  const ns = process.getuid() === 0 ? [] : ['--user', '--map-root-user'];
  const u = spawn('unshare', [...ns, '--pid', '--fork', '--kill-child', ALMANAC_BIN, 'migrate'], {
    env: { PATH: process.env.PATH, ASAN_OPTIONS: process.env.ASAN_OPTIONS, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  u.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((r) => u.on('exit', (code, signal) => r({ code, signal })));
  await waitFor(() => psql(pg.url, 'SELECT count(*) FROM pg_locks WHERE locktype = \'advisory\' AND NOT granted').stdout.trim() === '1',
    { what: 'migrate waiting for the lock', timeoutMs: 15000 });

  const child = Number(fs.readFileSync(`/proc/${u.pid}/task/${u.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
  assert.ok(child > 0, 'the migrator under unshare');
  const nspid = fs.readFileSync(`/proc/${child}/status`, 'utf8').match(/^NSpid:\s+(.*)$/m)[1].trim().split(/\s+/);
  assert.equal(nspid[nspid.length - 1], '1', 'the migrator is PID 1 in its namespace');

  const t0 = Date.now();
  process.kill(child, 'SIGTERM');
  const r = await Promise.race([exited, new Promise((res) => setTimeout(() => res(null), 5000))]);
  assert.ok(r, 'migrate exited within 5 s of SIGTERM');
  const ms = Date.now() - t0;
  assert.ok(ms < 1000, `exited in ${ms} ms`);
  assert.equal(r.code, 143, `exit status 143 (stderr: ${stderr})`);
  assert.match(stderr, /stopped by a signal; the migration in progress is rolled back/);
  await waitFor(() => psql(pg.url, 'SELECT count(*) FROM pg_locks WHERE locktype = \'advisory\' AND NOT granted').stdout.trim() === '0',
    { what: 'the migrator\'s session gone' });

  // The lock holder leaves; the next migrate does the whole work.
  holder.stdin.end(`SELECT pg_advisory_unlock(${LOCK});\n`);
  await migrate(env);
  assert.notEqual(psql(pg.url, 'SELECT max(version) FROM schema_migrations').stdout.trim(), '');
});

test('the application role reads and writes rows but changes no schema; migrate needs the owner', async () => {
  const pg = await startPostgres();
  after(() => pg.stop());
  const env = { ALMANAC_DATABASE_URL: pg.url, ALMANAC_REDIS_URL: 'redis://127.0.0.1:1/0' };
  const asApp = await runAlmanac(['migrate'], { env });
  assert.equal(asApp.code, 1, 'migrate as the application role fails');
  assert.match(asApp.stderr, /migrate: database error \(schema left at version 0\)/);
  await migrate(env); // as the owner
  const ok = psql(pg.url, "INSERT INTO users (email, password_hash, role) VALUES ('r@example.org', 'x', 'user'); UPDATE users SET role = 'admin'; DELETE FROM users");
  assert.equal(ok.status, 0, ok.stderr);
  for (const ddl of ['CREATE TABLE t (x int)', 'ALTER TABLE users ADD COLUMN x int', 'DROP TABLE chunks', 'CREATE INDEX i ON users (email)',
    'TRUNCATE outbox', 'CREATE SCHEMA s', 'CREATE TEMP TABLE t (x int)']) {
    const r = psql(pg.url, ddl);
    assert.notEqual(r.status, 0, `${ddl} must fail for the application role`);
    assert.match(r.stderr, /permission denied|must be owner/, ddl);
  }
});
