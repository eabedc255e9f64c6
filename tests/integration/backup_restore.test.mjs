/* SPDX-License-Identifier: Apache-2.0 */
// Backup and restore, end to end, through what ships: infrastructure/backup/almanac-backup.sh
// and almanac-restore.sh (local mode: the PostgreSQL tools and `almanac` on this host)
// against a populated system: real PostgreSQL, Redis, api, worker and beat, the Qdrant
// stand-in (which implements Qdrant's snapshot endpoints from its OpenAPI contract).
// Every service and data directory is then destroyed, the backup is restored into fresh
// ones, and the system must answer as before: sign-in, the same documents and chunk
// counts, the same top hits, one point per chunk, a document the backup caught pending
// becomes ready, and a new upload becomes ready. Also: a backup fails loudly when a part
// fails, keeps no secret, keeps N backups; a damaged backup is refused.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { startPostgres, startRedis } from '../lib/services.mjs';
import { startAlmanac, startProbed, migrate, createUser, ALMANAC_BIN, REPO_ROOT } from '../lib/almanac.mjs';
import { startQdrantStandin } from '../lib/qdrant-standin.mjs';
import { stackEnv } from '../lib/stack.mjs';
import { client, PASSWORD } from '../lib/apiclient.mjs';
import { sql } from '../lib/psql.mjs';

const BACKUP = path.join(REPO_ROOT, 'infrastructure', 'backup', 'almanac-backup.sh');
const RESTORE = path.join(REPO_ROOT, 'infrastructure', 'backup', 'almanac-restore.sh');
const QDRANT_KEY = 'qdrant-key-that-must-never-be-written-0123';
const CORPUS = path.join(REPO_ROOT, 'tests', 'eval', 'corpus');
const USERS = ['owner@example.org', 'reader@example.org', 'third@example.org'];
const QUERIES = ['incident response on-call escalation', 'expense receipts meals', 'backup retention policy', 'laptop equipment return', 'valve pressure logbook'];
const TYPES = { '.md': 'text/markdown', '.txt': 'text/plain', '.html': 'text/html' };

function pgBinDir() {
  const root = '/usr/lib/postgresql';
  const v = fs.readdirSync(root).sort((a, b) => Number(b) - Number(a))[0];
  return path.join(root, v, 'bin');
}

/** Runs a script: {code, stdout, stderr}. */
function run(file, args, env) {
  return new Promise((resolve) => {
    execFile(file, args, { env, timeout: 180000, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

/** The environment of the scripts in local mode for one set of services. They are
 * operator commands: they run as the database's owner (a restore creates the schema,
 * then migrates), not as the application role the services use. */
function scriptEnv(pg, env) {
  const u = new URL(pg.ownerUrl);
  return {
    ...env,
    ALMANAC_DATABASE_URL: pg.ownerUrl,
    PATH: `${pgBinDir()}:${process.env.PATH}`,
    ALMANAC_BACKUP_MODE: 'local',
    ALMANAC_BIN,
    PGHOST: u.hostname,
    PGPORT: u.port,
    PGUSER: decodeURIComponent(u.username),
    PGDATABASE: u.pathname.slice(1),
    ...(process.env.ASAN_OPTIONS ? { ASAN_OPTIONS: process.env.ASAN_OPTIONS } : {}),
    ...(process.env.LSAN_OPTIONS ? { LSAN_OPTIONS: process.env.LSAN_OPTIONS } : {}),
    ...(process.env.UBSAN_OPTIONS ? { UBSAN_OPTIONS: process.env.UBSAN_OPTIONS } : {}),
  };
}

/** Starts PostgreSQL, Redis, the stand-in; with migrate, an empty schema. */
async function services() {
  const pg = await startPostgres();
  const redis = await startRedis();
  const q = await startQdrantStandin({ apiKey: QDRANT_KEY });
  const env = stackEnv(pg, redis, q, { ALMANAC_QDRANT_API_KEY: QDRANT_KEY, ALMANAC_STUCK_AFTER_S: '3600' });
  return { pg, redis, q, env };
}

async function startApps(s, { worker = true } = {}) {
  s.api = await startAlmanac(['api'], { env: s.env });
  s.c = client(s.api);
  s.worker = worker ? await startProbed('worker', s.env, { healthRequestMs: 1000 }) : null;
  s.beat = await startProbed('beat', s.env, { healthRequestMs: 1000 });
}

async function stopApps(s) {
  for (const p of [s.beat, s.worker, s.api]) if (p) await p.stop();
  s.beat = s.worker = s.api = null;
}

/** Everything a restore must give back, read through the API and the stores. */
async function picture(s, tokens) {
  const docs = sql(s.pg, "SELECT string_agg(id || ':' || title || ':' || status || ':' || chunk_count, ',' ORDER BY id) FROM documents");
  const chunks = Number(sql(s.pg, 'SELECT count(*) FROM chunks'));
  const hits = {};
  for (const qtext of QUERIES) {
    const r = await s.c.search(tokens[0], { query: qtext, limit: 5, mode: 'hybrid' });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.degraded, false, `search degraded: ${r.body}`);
    hits[qtext] = r.json.results.map((x) => `${x.document_id}#${x.chunk_index}`);
  }
  return { docs, chunks, hits, points: s.q.collections.count('almanac_chunks') };
}

describe('backup and restore', { timeout: 600000 }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'almanac-backups-'));
  let a; // the system backed up
  let b; // the one restored
  let before1;
  let backupDir;
  let pendingId;
  let tokens;

  before(async () => {
    a = await services();
    await migrate(a.env);
    await createUser(a.env, USERS[0], PASSWORD, { admin: true });
    for (const u of USERS.slice(1)) await createUser(a.env, u, PASSWORD);
    await startApps(a);
    tokens = [];
    for (const u of USERS) tokens.push(await a.c.login(u));
    // Knowledge bases of two owners; ~50 documents of three kinds.
    const kbs = [(await a.c.createKb(tokens[0], 'handbook')).id, (await a.c.createKb(tokens[0], 'engineering')).id, (await a.c.createKb(tokens[1], 'own notes')).id];
    const ids = [];
    const files = fs.readdirSync(CORPUS).sort();
    let n = 0;
    for (const f of files) {
      const r = await a.c.upload(tokens[0], kbs[n++ % 2], f, fs.readFileSync(path.join(CORPUS, f)), { type: TYPES[path.extname(f)] });
      assert.equal(r.status, 202, r.body);
      ids.push(r.json.id);
    }
    for (let i = 0; ids.length < 50; i++) {
      const kind = ['.md', '.txt', '.html'][i % 3];
      const body =
        kind === '.html'
          ? `<html><body><h1>Station ${i}</h1><p>The maintenance crew inspects valve ${i * 7 + 3} every morning and records the pressure in the logbook.</p></body></html>`
          : kind === '.md'
            ? `# Station ${i}\n\n## Valves\n\nValve ${i * 7 + 3} pressure goes in the logbook every morning.\n\n## Spares\n\nCabinet ${i + 1} holds gaskets.\n`
            : `Station ${i} notes. Valve ${i * 7 + 3}: check the pressure and write it in the logbook. Spare gaskets are in cabinet ${i + 1}.\n`;
      const token = i % 4 === 3 ? tokens[1] : tokens[0];
      const kb = i % 4 === 3 ? kbs[2] : kbs[i % 2];
      const r = await a.c.upload(token, kb, `station-${i}${kind}`, body, { type: TYPES[kind] });
      assert.equal(r.status, 202, r.body);
      ids.push(r.json.id);
    }
    await a.c.waitReady(tokens[0], ids.filter((_, i) => i < 20 || (i - 20) % 4 !== 3), { timeoutMs: 240000 });
    await a.c.waitReady(tokens[1], ids.filter((_, i) => i >= 20 && (i - 20) % 4 === 3), { timeoutMs: 240000 });
    // One document the backup catches pending: no worker runs when it is uploaded.
    await a.worker.stop();
    a.worker = null;
    const r = await a.c.upload(tokens[0], kbs[0], 'late.txt', 'A late document about the backup retention policy of the archive room.\n');
    assert.equal(r.status, 202, r.body);
    pendingId = r.json.id;
    before1 = await picture(a, tokens);
    assert.equal(before1.points, before1.chunks, 'points = chunks before the backup');
  });

  after(async () => {
    for (const s of [a, b]) {
      if (!s) continue;
      await stopApps(s).catch(() => {});
      await s.pg.stop().catch(() => {});
      await s.redis.stop().catch(() => {});
      await s.q.close().catch(() => {});
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  test('a backup of the running system: dump, snapshot, manifest; no secret anywhere', async () => {
    const r = await run(BACKUP, ['--dir', tmp], scriptEnv(a.pg, a.env));
    assert.equal(r.code, 0, r.stderr);
    backupDir = r.stdout.trim();
    assert.ok(fs.existsSync(path.join(backupDir, 'manifest.json')), r.stdout);
    const m = JSON.parse(fs.readFileSync(path.join(backupDir, 'manifest.json'), 'utf8'));
    const version = JSON.parse((await run(ALMANAC_BIN, ['version', '--json'], {})).stdout);
    assert.equal(m.almanac_version, version.version);
    assert.equal(m.schema_version, version.schema.needs);
    assert.equal(m.documents, 51);
    assert.equal(m.users, 3);
    assert.equal(m.chunks, before1.chunks);
    assert.equal(m.vectors_points, before1.points);
    assert.equal(m.database_bytes, fs.statSync(path.join(backupDir, 'database.dump')).size);
    assert.match(m.vectors_sha256, /^[0-9a-f]{64}$/);
    assert.equal(fs.readFileSync(path.join(backupDir, 'database.dump')).subarray(0, 5).toString(), 'PGDMP');
    // No secret in names, output or manifest.
    const texts = [backupDir, r.stdout, r.stderr, fs.readFileSync(path.join(backupDir, 'manifest.json'), 'utf8'), fs.readFileSync(path.join(backupDir, 'SHA256SUMS'), 'utf8')];
    for (const secret of [QDRANT_KEY, a.env.ALMANAC_JWT_SECRET, PASSWORD]) {
      for (const t of texts) assert.ok(!t.includes(secret), 'a secret in the backup output or manifest');
    }
    // The snapshot left nothing behind on Qdrant's side.
    const list = a.q.requests.filter((x) => x.method === 'DELETE' && x.path.includes('/snapshots/'));
    assert.equal(list.length, 1);
    assert.equal(r.stderr.split('\n').filter((l) => /error/i.test(l)).length, 0, r.stderr);
  });

  test('the Kubernetes way: a snapshot init container, then the script in prepared mode', async () => {
    const work = fs.mkdtempSync(path.join(tmp, 'prepared-'));
    const snap = await run(ALMANAC_BIN, ['snapshot', 'save', '--out', path.join(work, 'vectors.snapshot'), '--meta', path.join(work, 'meta.json')], scriptEnv(a.pg, a.env));
    assert.equal(snap.code, 0, snap.stderr);
    // As the CronJob runs it: libpq's variables from the deployment's database URL.
    const jobEnv = Object.fromEntries(Object.entries(scriptEnv(a.pg, a.env)).filter(([k]) => !k.startsWith('PG')));
    const r = await run(BACKUP, ['--dir', path.join(tmp, 'k8s')], { ...jobEnv, ALMANAC_BACKUP_MODE: 'prepared', ALMANAC_BACKUP_PREPARED: work, ALMANAC_BACKUP_DATABASE_URL: a.pg.ownerUrl });
    assert.equal(r.code, 0, r.stderr);
    const m = JSON.parse(fs.readFileSync(path.join(r.stdout.trim(), 'manifest.json'), 'utf8'));
    assert.equal(m.vectors_points, before1.points);
    assert.equal(m.vectors_sha256, JSON.parse(fs.readFileSync(path.join(work, 'meta.json'), 'utf8')).sha256);
    const v = await run(RESTORE, ['--verify-only', r.stdout.trim()], scriptEnv(a.pg, a.env));
    assert.equal(v.code, 0, v.stderr);
    // Without the init container's files the job fails, saying why.
    const none = await run(BACKUP, ['--dir', path.join(tmp, 'k8s')], { ...scriptEnv(a.pg, a.env), ALMANAC_BACKUP_MODE: 'prepared', ALMANAC_BACKUP_PREPARED: path.join(tmp, 'nowhere') });
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /meta.json is missing/);
    // The snapshot command never writes binary data to a terminal, and says what it wants.
    assert.equal((await run(ALMANAC_BIN, ['snapshot', 'save', '--meta', 'x'], scriptEnv(a.pg, a.env))).code, 64);
  });

  test('a backup fails loudly when a part fails, and keeps nothing', async () => {
    await a.q.setMode('error');
    const r = await run(BACKUP, ['--dir', path.join(tmp, 'failing')], scriptEnv(a.pg, a.env));
    await a.q.setMode('ok');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /almanac-backup: error: .*Qdrant/);
    assert.deepEqual(fs.readdirSync(path.join(tmp, 'failing')), [], 'no partial backup left');
    // PostgreSQL unreachable: the same.
    const env = { ...scriptEnv(a.pg, a.env), PGPORT: '1' };
    const r2 = await run(BACKUP, ['--dir', path.join(tmp, 'failing')], env);
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr, /almanac-backup: error: /);
    assert.deepEqual(fs.readdirSync(path.join(tmp, 'failing')), []);
  });

  test('retention keeps the newest N backups', async () => {
    const dir = path.join(tmp, 'retention');
    const made = [];
    for (let i = 0; i < 3; i++) {
      const r = await run(BACKUP, ['--dir', dir, '--keep', '2'], scriptEnv(a.pg, a.env));
      assert.equal(r.code, 0, r.stderr);
      made.push(path.basename(r.stdout.trim()));
      await new Promise((res) => setTimeout(res, 1100)); // names are to the second
    }
    assert.deepEqual(fs.readdirSync(dir).sort(), made.slice(1).sort());
    assert.equal((await run(BACKUP, ['--keep', '0'], scriptEnv(a.pg, a.env))).code, 64);
  });

  test('a damaged backup is refused before anything is touched', async () => {
    const copy = path.join(tmp, 'damaged');
    fs.cpSync(backupDir, copy, { recursive: true });
    const f = path.join(copy, 'vectors.snapshot');
    const buf = fs.readFileSync(f);
    buf[10] ^= 1;
    fs.writeFileSync(f, buf);
    const r = await run(RESTORE, ['--verify-only', copy], scriptEnv(a.pg, a.env));
    assert.equal(r.code, 65, r.stderr);
    assert.match(r.stderr, /damaged|does not match/);
    const ok = await run(RESTORE, ['--verify-only', backupDir], scriptEnv(a.pg, a.env));
    assert.equal(ok.code, 0, ok.stderr);
    // A database that holds data is not overwritten without --force.
    const busy = await run(RESTORE, [backupDir], scriptEnv(a.pg, a.env));
    assert.equal(busy.code, 73, busy.stderr);
  });

  test('destroy everything, restore into fresh services: the same system', async () => {
    // Every snapshot request and reply so far followed Qdrant's contract.
    assert.equal(a.q.invalidRequests, 0, JSON.stringify(a.q.invalid));
    assert.equal(a.q.invalidReplies, 0, JSON.stringify(a.q.invalid));
    await stopApps(a);
    await a.pg.stop();
    await a.redis.stop();
    await a.q.close();
    for (const d of [a.pg.dir, a.redis.dir]) fs.rmSync(d, { recursive: true, force: true });
    a = null;

    b = await services();
    // Empty services as Compose would start them: the migrate service has run.
    await migrate(b.env);
    const r = await run(RESTORE, [backupDir], scriptEnv(b.pg, b.env));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /loading the vector snapshot/);
    await startApps(b);
    const t = [];
    for (const u of USERS) t.push(await b.c.login(u));
    // The document the backup caught pending is queued again and becomes ready.
    await b.c.waitReady(t[0], [pendingId], { timeoutMs: 120000 });
    const after1 = await picture(b, t);
    const settled = before1.docs.replace(new RegExp(`(^|,)${pendingId}:([^:]*):pending:0`), `$1${pendingId}:$2:ready:`);
    assert.equal(after1.docs.replace(new RegExp(`(^|,)${pendingId}:([^:]*):ready:\\d+`), `$1${pendingId}:$2:ready:`), settled);
    assert.equal(after1.points, after1.chunks, 'points = chunks after the restore');
    const lateChunks = Number(sql(b.pg, `SELECT chunk_count FROM documents WHERE id = ${pendingId}`));
    assert.equal(after1.chunks, before1.chunks + lateChunks);
    for (const qtext of QUERIES) {
      // The late document may rank in the new system; every other hit is where it was.
      const strip = (l) => l.filter((h) => !h.startsWith(`${pendingId}#`));
      assert.deepEqual(strip(after1.hits[qtext]).slice(0, 3), strip(before1.hits[qtext]).slice(0, 3), `top hits of "${qtext}"`);
    }
    // New work after the restore: a fresh id, a fresh outbox row, ready.
    const kb = sql(b.pg, "SELECT id FROM knowledge_bases WHERE name = 'handbook'");
    const up = await b.c.upload(t[0], kb, 'after-restore.md', '# After the restore\n\nNew uploads are indexed as before.\n', { type: 'text/markdown' });
    assert.equal(up.status, 202, up.body);
    await b.c.waitReady(t[0], [up.json.id], { timeoutMs: 60000 });
    assert.equal(b.q.invalidRequests, 0, JSON.stringify(b.q.invalid));
    assert.equal(b.q.invalidReplies, 0, JSON.stringify(b.q.invalid));
  });

  test('a backup without a usable snapshot is restored by indexing everything again', async () => {
    // The same backup restored with another vector size configured: rebuilt.
    const c = await services();
    try {
      c.env.ALMANAC_EMBEDDINGS_DIM = '24';
      const r = await run(RESTORE, [backupDir], scriptEnv(c.pg, c.env));
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /indexing every document again/);
      await startApps(c);
      const tok = await c.c.login(USERS[0]);
      const ids = sql(c.pg, 'SELECT string_agg(id::text, \',\') FROM documents').split(',').map(Number);
      const tok1 = await c.c.login(USERS[1]);
      const own = new Set(sql(c.pg, "SELECT string_agg(d.id::text, ',') FROM documents d JOIN knowledge_bases k ON k.id = d.knowledge_base_id JOIN users u ON u.id = k.owner_id WHERE u.email = 'reader@example.org'").split(',').map(Number));
      await c.c.waitReady(tok, ids.filter((i) => !own.has(i)), { timeoutMs: 240000 });
      await c.c.waitReady(tok1, [...own], { timeoutMs: 240000 });
      assert.equal(c.q.collections.dim('almanac_chunks'), 24);
      assert.equal(c.q.collections.count('almanac_chunks'), Number(sql(c.pg, 'SELECT count(*) FROM chunks')));
    } finally {
      await stopApps(c).catch(() => {});
      await c.pg.stop();
      await c.redis.stop();
      await c.q.close();
    }
  });
});
