/* SPDX-License-Identifier: Apache-2.0 */
// Integration tests of knowledge bases, documents, auth and migrations: the real
// `almanac` binary against a real PostgreSQL and Redis.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import { startPostgres, startRedis, redisCli, sleep } from '../lib/services.mjs';
import fs from 'node:fs';
import path from 'node:path';
import { startAlmanac, runAlmanac, migrate, createUser, waitFor, REPO_ROOT } from '../lib/almanac.mjs';
import { client, multipart, PASSWORD } from '../lib/apiclient.mjs';
import { sql } from '../lib/psql.mjs';

const JWT_SECRET = 'kb-tests-jwt-secret-0123456789abcdef-xyz';
// The schema version this binary needs: one migration file per version.
// Versions may have gaps while branches are apart (a number is handed out per branch).
const VERSIONS = fs
  .readdirSync(path.join(REPO_ROOT, 'db', 'migrations'))
  .filter((f) => /^\d{4}_.*\.sql$/.test(f))
  .map((f) => Number(f.slice(0, 4)))
  .sort((a, b) => a - b);
const MIGRATIONS = VERSIONS.length;
const LATEST = VERSIONS[VERSIONS.length - 1];

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

/** A compact JWS; alg 'none' gives an empty signature. */
function makeToken(claims, { key = JWT_SECRET, alg = 'HS256' } = {}) {
  const head = b64url(JSON.stringify({ alg, typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = alg === 'none' ? '' : b64url(crypto.createHmac('sha256', key).update(`${head}.${body}`).digest());
  return `${head}.${body}.${sig}`;
}

function baseEnv(pg, redis, extra = {}) {
  return {
    ALMANAC_DATABASE_URL: pg.url,
    ALMANAC_REDIS_URL: redis.url,
    ALMANAC_JWT_SECRET: JWT_SECRET,
    ALMANAC_READY_REQUIRED: 'postgres,redis',
    ALMANAC_READY_CACHE_MS: '200',
    ALMANAC_SHUTDOWN_DELAY_MS: '0',
    ...extra,
  };
}

function assertError(r, status, code) {
  assert.equal(r.status, status, r.body);
  assert.equal(r.json?.error?.code, code, r.body);
  assert.equal(typeof r.json.error.message, 'string');
  assert.equal(r.json.error.request_id, r.headers['x-request-id']);
}

describe('migrations', () => {
  test('from empty, from each earlier version, idempotent', async () => {
    const pg = await startPostgres();
    const redis = await startRedis();
    const env = baseEnv(pg, redis);
    let r = await runAlmanac(['migrate', '--status'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`schema version 0; this binary needs ${LATEST}; ${MIGRATIONS} pending`));
    await migrate(env, ['--target', '1']);
    assert.equal(sql(pg, 'SELECT max(version) FROM schema_migrations'), '1');
    // data written at version 1 must survive version 2 (which adds a column to chunks)
    sql(pg, `INSERT INTO users (email, password_hash, role) VALUES ('v1@example.org', 'x', 'user');
             INSERT INTO knowledge_bases (owner_id, name) VALUES (1, 'kb');
             INSERT INTO documents (knowledge_base_id, title, filename, media_type, size_bytes, sha256, content)
               VALUES (1, 't', 't.txt', 'text/plain', 5, repeat('a', 64), 'hello');
             INSERT INTO chunks (document_id, chunk_index, text, start_offset, end_offset) VALUES (1, 0, 'hello world', 0, 5);`);
    await migrate(env, ['--target', '2']);
    assert.equal(sql(pg, 'SELECT max(version) FROM schema_migrations'), '2');
    assert.equal(sql(pg, 'SELECT knowledge_base_id FROM chunks'), '1');
    // each later version in turn, then the rest: all from the same data
    for (const v of VERSIONS.filter((x) => x >= 3)) {
      await migrate(env, ['--target', String(v)]);
      assert.equal(sql(pg, 'SELECT max(version) FROM schema_migrations'), String(v));
    }
    assert.equal(sql(pg, "SELECT count(*) FROM chunks WHERE tsv @@ to_tsquery('english', 'world')"), '1');
    r = await migrate(env);
    assert.match(r.stdout, /schema up to date/);
    assert.equal(sql(pg, 'SELECT count(*) FROM schema_migrations'), String(MIGRATIONS));
    await pg.stop();
    await redis.stop();
  });

  test('two migrators at once: one applies, the other waits and finds nothing to do', async () => {
    const pg = await startPostgres();
    const redis = await startRedis();
    const env = baseEnv(pg, redis);
    const owner = { ...env, ALMANAC_DATABASE_URL: pg.ownerUrl };
    const [a, b] = await Promise.all([runAlmanac(['migrate'], { env: owner }), runAlmanac(['migrate'], { env: owner })]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(sql(pg, 'SELECT count(*) FROM schema_migrations'), String(MIGRATIONS));
    const applied = (a.stdout + b.stdout).match(/"event":"migrate.applied"/g) || [];
    assert.equal(applied.length, MIGRATIONS, 'each migration applied exactly once');
    await pg.stop();
    await redis.stop();
  });

  test('a failing migration exits non-zero; bad usage exits 64', async () => {
    const pg = await startPostgres();
    const redis = await startRedis();
    const env = baseEnv(pg, redis);
    await migrate(env, ['--target', '1']);
    // a conflicting object makes migration 2 fail
    sql({ url: pg.ownerUrl }, 'CREATE INDEX chunks_kb_idx ON users (id)');
    const r = await runAlmanac(['migrate'], { env: { ...env, ALMANAC_DATABASE_URL: pg.ownerUrl } });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /migration 0002_chunk_search failed/);
    assert.equal(sql(pg, 'SELECT max(version) FROM schema_migrations'), '1', 'rolled back');
    assert.equal((await runAlmanac(['migrate', '--target', '100000'], { env })).code, 64);
    await pg.stop();
    await redis.stop();
  });

  test('the api refuses work on an old schema and recovers after migrate, without restart', async () => {
    const pg = await startPostgres();
    const redis = await startRedis();
    const env = baseEnv(pg, redis);
    await migrate(env, ['--target', '1']);
    const api = await startAlmanac(['api'], { env });
    const c = client(api);
    const ready = await waitFor(async () => {
      const r = await c.call('GET', '/ready');
      return r.status === 503 && r.json.checks['schema:responseTime'] ? r : null;
    }, { what: 'schema check failing' });
    assert.match(ready.json.checks['schema:responseTime'][0].output, new RegExp(`version 1, this binary needs ${LATEST}: run 'almanac migrate'`));
    const r = await c.call('POST', '/api/v1/auth/login', { json: { email: 'a@b.c', password: 'whatever1' } });
    assertError(r, 503, 'unavailable');
    assert.match(r.json.error.message, /almanac migrate/);
    await migrate(env);
    await waitFor(async () => (await c.call('GET', '/ready')).status === 200, { what: '/ready 200 after migrate' });
    await createUser(env, 'late@example.org', PASSWORD);
    await c.login('late@example.org');
    await api.stop();
    await pg.stop();
    await redis.stop();
  });
});

describe('knowledge bases and documents', () => {
  let pg, redis, api, c, env;
  let admin, alice, bob;

  before(async () => {
    pg = await startPostgres();
    redis = await startRedis({ aof: true });
    env = baseEnv(pg, redis, { ALMANAC_MAX_UPLOAD_BYTES: '4096', ALMANAC_LOGIN_MAX_ATTEMPTS: '5' });
    await migrate(env);
    await createUser(env, 'admin@example.org', PASSWORD, { admin: true });
    await createUser(env, 'alice@example.org', PASSWORD);
    await createUser(env, 'bob@example.org', PASSWORD);
    api = await startAlmanac(['api'], { env });
    c = client(api);
    admin = await c.login('admin@example.org');
    alice = await c.login('ALICE@example.org'); // emails compare case-insensitively
    bob = await c.login('bob@example.org');
  });

  after(async () => {
    // A graceful stop must exit 0: under the sanitizer build this also proves no leak.
    api?.signal('SIGTERM');
    const r = await api?.waitExit(20000);
    await pg?.stop();
    await redis?.stop();
    if (r) assert.equal(r.code, 0, `api exit: ${api.output().slice(-3000)}`);
  });

  test('login answers the pinned shape; /users/me', async () => {
    const r = await c.call('POST', '/api/v1/auth/login', { json: { email: 'alice@example.org', password: PASSWORD } });
    assert.equal(r.status, 200);
    assert.equal(r.json.token_type, 'bearer');
    assert.equal(typeof r.json.access_token, 'string');
    assert.ok(r.json.expires_in > 0);
    const me = await c.call('GET', '/api/v1/users/me', { token: r.json.access_token });
    assert.equal(me.status, 200);
    assert.equal(me.json.email, 'alice@example.org');
    assert.equal(me.json.role, 'user');
  });

  test('every kind of bad token is refused with 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    const aliceId = Number(sql(pg, "SELECT id FROM users WHERE email = 'alice@example.org'"));
    const good = { sub: String(aliceId), role: 'user', iat: now, exp: now + 600 };
    // sanity: a token we make with the right key works, so the refusals below are real
    assert.equal((await c.call('GET', '/api/v1/users/me', { token: makeToken(good) })).status, 200);
    const cases = {
      missing: undefined,
      garbage: 'not-a-token',
      'alg none': makeToken(good, { alg: 'none' }),
      'alg HS512': makeToken(good, { alg: 'HS512' }),
      'wrong key': makeToken(good, { key: 'some-other-key-0123456789abcdef-0123' }),
      expired: makeToken({ ...good, iat: now - 7200, exp: now - 3600 }),
      'tampered claims': (() => {
        const [h, , s] = makeToken(good).split('.');
        return `${h}.${b64url(JSON.stringify({ ...good, role: 'admin' }))}.${s}`;
      })(),
      'truncated signature': makeToken(good).slice(0, -4),
    };
    for (const [name, token] of Object.entries(cases)) {
      const r = await c.call('GET', '/api/v1/knowledge-bases', { token });
      assertError(r, 401, 'unauthorized');
      assert.ok(r.headers['www-authenticate'], `${name}: WWW-Authenticate`);
    }
  });

  test('wrong password and unknown email: 401; disabled users are refused at once', async () => {
    assertError(await c.call('POST', '/api/v1/auth/login', { json: { email: 'bob@example.org', password: 'wrong-password' } }), 401, 'unauthorized');
    assertError(await c.call('POST', '/api/v1/auth/login', { json: { email: 'nobody@example.org', password: PASSWORD } }), 401, 'unauthorized');
    assertError(await c.call('POST', '/api/v1/auth/login', { json: { email: 'bob@example.org' } }), 422, 'unprocessable');
    await createUser(env, 'carol@example.org', PASSWORD);
    const carol = await c.login('carol@example.org');
    const carolId = Number(sql(pg, "SELECT id FROM users WHERE email = 'carol@example.org'"));
    assertError(await c.call('PATCH', `/api/v1/admin/users/${carolId}`, { token: alice, json: { disabled: true } }), 403, 'forbidden');
    const r = await c.call('PATCH', `/api/v1/admin/users/${carolId}`, { token: admin, json: { disabled: true } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.disabled, true);
    assertError(await c.call('GET', '/api/v1/users/me', { token: carol }), 401, 'unauthorized');
    assertError(await c.call('POST', '/api/v1/auth/login', { json: { email: 'carol@example.org', password: PASSWORD } }), 401, 'unauthorized');
  });

  test('failed sign-ins are rate limited per account with 429 and Retry-After', async () => {
    await createUser(env, 'dave@example.org', PASSWORD);
    for (let i = 0; i < 5; i++) {
      assertError(await c.call('POST', '/api/v1/auth/login', { json: { email: 'dave@example.org', password: `wrong-${i}-xx` } }), 401, 'unauthorized');
    }
    let r = await c.call('POST', '/api/v1/auth/login', { json: { email: 'Dave@Example.org', password: 'wrong-again' } });
    assertError(r, 429, 'rate_limited');
    assert.ok(Number(r.headers['retry-after']) > 0, 'Retry-After');
    // even the right password waits out the window
    r = await c.call('POST', '/api/v1/auth/login', { json: { email: 'dave@example.org', password: PASSWORD } });
    assertError(r, 429, 'rate_limited');
    // other accounts are not affected
    await c.login('bob@example.org');
  });

  test('admin user management and sign-up switch', async () => {
    let r = await c.call('POST', '/api/v1/admin/users', { token: admin, json: { email: 'erin@example.org', password: PASSWORD, role: 'admin' } });
    assert.equal(r.status, 201, r.body);
    assert.equal(r.json.role, 'admin');
    assertError(await c.call('POST', '/api/v1/admin/users', { token: admin, json: { email: 'erin@example.org', password: PASSWORD } }), 409, 'conflict');
    assertError(await c.call('POST', '/api/v1/admin/users', { token: admin, json: { email: 'bad', password: PASSWORD } }), 422, 'unprocessable');
    assertError(await c.call('POST', '/api/v1/admin/users', { token: admin, json: { email: 'f@example.org', password: 'short' } }), 422, 'unprocessable');
    assertError(await c.call('GET', '/api/v1/admin/users', { token: bob }), 403, 'forbidden');
    r = await c.call('GET', '/api/v1/admin/users?limit=2', { token: admin });
    assert.equal(r.status, 200);
    assert.equal(r.json.users.length, 2);
    assert.ok(r.json.next_cursor);
    assertError(await c.call('POST', '/api/v1/auth/signup', { json: { email: 'g@example.org', password: PASSWORD } }), 403, 'forbidden');
  });

  test('knowledge bases: create, list with paging, get, rename, permissions', async () => {
    const ids = [];
    for (const name of ['One', 'Two', '  Three  ']) {
      const r = await c.call('POST', '/api/v1/knowledge-bases', { token: alice, json: { name } });
      assert.equal(r.status, 201, r.body);
      assert.equal(typeof r.json.id, 'number');
      ids.push(r.json.id);
    }
    assert.equal((await c.call('GET', `/api/v1/knowledge-bases/${ids[2]}`, { token: alice })).json.name, 'Three');
    let r = await c.call('GET', '/api/v1/knowledge-bases?limit=2', { token: alice });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.knowledge_bases.map((k) => k.id), [ids[2], ids[1]]);
    r = await c.call('GET', `/api/v1/knowledge-bases?limit=2&cursor=${r.json.next_cursor}`, { token: alice });
    assert.deepEqual(r.json.knowledge_bases.map((k) => k.id), [ids[0]]);
    assert.equal(r.json.next_cursor, null);
    assertError(await c.call('GET', '/api/v1/knowledge-bases?limit=0', { token: alice }), 400, 'invalid_request');
    assertError(await c.call('GET', '/api/v1/knowledge-bases?cursor=abc', { token: alice }), 400, 'invalid_request');
    // bob sees none of alice's, and gets 404 (not 403) for each
    r = await c.call('GET', '/api/v1/knowledge-bases', { token: bob });
    assert.ok(r.json.knowledge_bases.every((k) => !ids.includes(k.id)));
    assertError(await c.call('GET', `/api/v1/knowledge-bases/${ids[0]}`, { token: bob }), 404, 'not_found');
    assertError(await c.call('PATCH', `/api/v1/knowledge-bases/${ids[0]}`, { token: bob, json: { name: 'mine' } }), 404, 'not_found');
    assertError(await c.call('DELETE', `/api/v1/knowledge-bases/${ids[0]}`, { token: bob }), 404, 'not_found');
    // the admin sees them all
    assert.equal((await c.call('GET', `/api/v1/knowledge-bases/${ids[0]}`, { token: admin })).status, 200);
    r = await c.call('PATCH', `/api/v1/knowledge-bases/${ids[0]}`, { token: alice, json: { name: 'Renamed' } });
    assert.equal(r.status, 200);
    assert.equal(r.json.name, 'Renamed');
    assertError(await c.call('POST', '/api/v1/knowledge-bases', { token: alice, json: { name: '' } }), 422, 'unprocessable');
    assertError(await c.call('POST', '/api/v1/knowledge-bases', { token: alice, json: { name: 'x'.repeat(201) } }), 422, 'unprocessable');
    assertError(await c.call('POST', '/api/v1/knowledge-bases', { token: alice, json: { name: 5 } }), 422, 'unprocessable');
    assertError(await c.call('POST', '/api/v1/knowledge-bases', { token: alice, body: '{"name":', headers: { 'Content-Type': 'application/json' } }), 400, 'invalid_request');
    assertError(await c.call('POST', '/api/v1/knowledge-bases', { token: alice, body: '{"name":"a","name":"b"}' }), 400, 'invalid_request');
    assertError(await c.call('GET', '/api/v1/knowledge-bases/99999999', { token: alice }), 404, 'not_found');
    assertError(await c.call('GET', '/api/v1/knowledge-bases/abc', { token: alice }), 404, 'not_found');
    assertError(await c.call('PUT', '/api/v1/knowledge-bases', { token: alice }), 405, 'method_not_allowed');
  });

  test('documents: upload, status, duplicates, content and every refusal', async () => {
    const kb = (await c.call('POST', '/api/v1/knowledge-bases', { token: alice, json: { name: 'Docs' } })).json.id;
    let r = await c.upload(alice, kb, 'guide.md', '# Guide\n\nHello there.\n', { type: 'text/markdown' });
    assert.equal(r.status, 202, r.body);
    assert.equal(r.json.status, 'pending');
    assert.equal(r.json.title, 'guide');
    assert.equal(r.json.media_type, 'text/markdown');
    const doc = r.json.id;
    r = await c.call('GET', `/api/v1/documents/${doc}`, { token: alice });
    assert.equal(r.status, 200);
    assert.equal(r.json.chunk_count, 0);
    assert.equal(r.json.error, null);
    // the same content again: 409 naming the first
    r = await c.upload(alice, kb, 'copy.md', '# Guide\n\nHello there.\n', { type: 'text/markdown' });
    assertError(r, 409, 'conflict');
    assert.equal(r.json.error.document_id, doc);
    // raw body with ?filename=, latin-1 declared and converted
    r = await c.call('POST', `/api/v1/knowledge-bases/${kb}/documents?filename=cafe.txt`, {
      token: alice,
      body: Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]),
      headers: { 'Content-Type': 'text/plain; charset=iso-8859-1' },
    });
    assert.equal(r.status, 202, r.body);
    r = await c.call('GET', `/api/v1/documents/${r.json.id}/content`, { token: alice });
    assert.equal(r.json.content, 'café\n');
    // type from the extension when the client says octet-stream; title field wins
    r = await c.upload(alice, kb, 'page.html', '<p>hi</p>', { type: 'application/octet-stream', title: 'My page' });
    assert.equal(r.status, 202, r.body);
    assert.equal(r.json.media_type, 'text/html');
    assert.equal(r.json.title, 'My page');
    // refusals
    r = await c.upload(alice, kb, 'archive.gz', Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]), { type: 'application/gzip' });
    assertError(r, 415, 'unsupported_media_type');
    assert.match(r.json.error.message, /text\/plain, text\/markdown, text\/html, application\/pdf, DOCX/);
    assertError(await c.upload(alice, kb, 'big.txt', 'a'.repeat(5000)), 413, 'payload_too_large');
    assertError(await c.upload(alice, kb, 'bad.txt', Buffer.from([0x61, 0xc3, 0x28, 0x62])), 422, 'unprocessable');
    assertError(await c.upload(alice, kb, 'empty.txt', ''), 422, 'unprocessable');
    assertError(await c.upload(alice, kb, 'x.txt', 'abc', { type: 'text/plain; charset=klingon' }), 415, 'unsupported_media_type');
    const noFile = multipart([{ name: 'other', data: 'x' }]);
    assertError(await c.call('POST', `/api/v1/knowledge-bases/${kb}/documents`, { token: alice, body: noFile.body, headers: { 'Content-Type': noFile.contentType } }), 422, 'unprocessable');
    assertError(await c.call('POST', `/api/v1/knowledge-bases/${kb}/documents`, { token: alice, body: 'junk', headers: { 'Content-Type': 'multipart/form-data; boundary=zzz' } }), 400, 'invalid_request');
    assertError(await c.call('POST', `/api/v1/knowledge-bases/${kb}/documents`, { token: alice, body: 'text', headers: { 'Content-Type': 'text/plain' } }), 422, 'unprocessable');
    // a body past the HTTP cap is refused before it is read
    const huge = await c.call('POST', `/api/v1/knowledge-bases/${kb}/documents?filename=h.txt`, { token: alice, body: 'a'.repeat(200000), headers: { 'Content-Type': 'text/plain' } }).catch((e) => ({ error: e }));
    if (!huge.error) assertError(huge, 413, 'payload_too_large');
    // listing with status filter and paging
    r = await c.call('GET', `/api/v1/knowledge-bases/${kb}/documents?status=pending&limit=2`, { token: alice });
    assert.equal(r.status, 200);
    assert.equal(r.json.documents.length, 2);
    assert.ok(r.json.next_cursor);
    assertError(await c.call('GET', `/api/v1/knowledge-bases/${kb}/documents?status=done`, { token: alice }), 400, 'invalid_request');
    // other users: 404 everywhere; the admin: allowed
    assertError(await c.call('GET', `/api/v1/documents/${doc}`, { token: bob }), 404, 'not_found');
    assertError(await c.call('GET', `/api/v1/documents/${doc}/content`, { token: bob }), 404, 'not_found');
    assertError(await c.upload(bob, kb, 'intrude.txt', 'nope'), 404, 'not_found');
    assertError(await c.call('DELETE', `/api/v1/documents/${doc}`, { token: bob }), 404, 'not_found');
    assertError(await c.call('POST', `/api/v1/documents/${doc}/reprocess`, { token: bob }), 404, 'not_found');
    assert.equal((await c.call('GET', `/api/v1/documents/${doc}`, { token: admin })).status, 200);
  });

  test('jobs: upload, reprocess and delete write their jobs; the relay moves each exactly once', async () => {
    const kb = (await c.call('POST', '/api/v1/knowledge-bases', { token: alice, json: { name: 'Jobs' } })).json.id;
    const doc = (await c.upload(alice, kb, 'a.txt', 'job test one')).json.id;
    const jobsFor = (stream, id) => {
      const out = redisCli(redis.port, 'XRANGE', `almanac:queue:${stream}`, '-', '+');
      return out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((j) => j.payload.document_id === id);
    };
    await waitFor(() => jobsFor('ingest', doc).length === 1, { what: 'ingest job relayed' });
    const job = jobsFor('ingest', doc)[0];
    assert.equal(job.type, 'ingest');
    assert.equal(job.attempt, 1);
    assert.match(job.id, /^outbox-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    // Still pending: its job is queued, so reprocessing adds nothing (202, same state).
    let r = await c.call('POST', `/api/v1/documents/${doc}/reprocess`, { token: alice });
    assert.equal(r.status, 202, r.body);
    assert.equal(r.json.status, 'pending');
    await sleep(300);
    assert.equal(jobsFor('ingest', doc).length, 1, 'no second job while one is queued');
    // No worker runs here: finish the ingestion by hand, then reprocess queues one job.
    sql(pg, `UPDATE documents SET status = 'ready' WHERE id = ${doc}`);
    r = await c.call('POST', `/api/v1/documents/${doc}/reprocess`, { token: alice });
    assert.equal(r.status, 202, r.body);
    assert.equal(r.json.status, 'pending');
    await waitFor(() => jobsFor('ingest', doc).length === 2, { what: 'second ingest job' });
    r = await c.call('DELETE', `/api/v1/documents/${doc}`, { token: alice });
    assert.equal(r.status, 200);
    await waitFor(() => jobsFor('maintenance', doc).length === 1, { what: 'purge job' });
    assert.equal(jobsFor('maintenance', doc)[0].type, 'purge_vectors');
    assertError(await c.call('GET', `/api/v1/documents/${doc}`, { token: alice }), 404, 'not_found');
    await sleep(300);
    assert.equal(sql(pg, 'SELECT count(*) FROM outbox'), '0');
    assert.equal(jobsFor('ingest', doc).length, 2, 'no duplicates');
  });

  test('an upload with Redis down succeeds and is relayed exactly once when Redis returns', async () => {
    const kb = (await c.call('POST', '/api/v1/knowledge-bases', { token: alice, json: { name: 'Outage' } })).json.id;
    await redis.stop();
    const r = await c.upload(alice, kb, 'outage.txt', 'written while redis was down');
    assert.equal(r.status, 202, r.body);
    const doc = r.json.id;
    assert.equal(sql(pg, `SELECT count(*) FROM outbox WHERE payload->>'document_id' = '${doc}'`), '1');
    await sleep(500);
    await redis.start();
    const count = () => {
      const out = redisCli(redis.port, 'XRANGE', 'almanac:queue:ingest', '-', '+');
      return out.split('\n').filter((l) => l.startsWith('{') && JSON.parse(l).payload.document_id === doc).length;
    };
    await waitFor(() => count() === 1, { timeoutMs: 15000, what: 'job relayed after redis returned' });
    await sleep(2500); // a retry period later: still exactly one
    assert.equal(count(), 1);
    assert.equal(sql(pg, 'SELECT count(*) FROM outbox'), '0');
  });

  test('deleting a knowledge base removes its documents and queues the vector purge', async () => {
    const kb = (await c.call('POST', '/api/v1/knowledge-bases', { token: alice, json: { name: 'Doomed' } })).json.id;
    const doc = (await c.upload(alice, kb, 'd.txt', 'doomed content')).json.id;
    const r = await c.call('DELETE', `/api/v1/knowledge-bases/${kb}`, { token: alice });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.deleted, true);
    assertError(await c.call('GET', `/api/v1/documents/${doc}`, { token: alice }), 404, 'not_found');
    assert.equal(sql(pg, `SELECT count(*) FROM documents WHERE id = ${doc}`), '0');
    await waitFor(() => redisCli(redis.port, 'XRANGE', 'almanac:queue:maintenance', '-', '+').includes(`"knowledge_base_id":${kb}}`), { what: 'kb purge job' });
  });
});
