/* SPDX-License-Identifier: Apache-2.0 */
// Upgrades and rollbacks with data in the database: the previous release is built from
// git (its tag v0.1.0, or, when tags did not travel with the clone, the commit it was
// cut from), run with data, then the schema is migrated under it while it serves, the
// new api and worker run side by side with the old ones (a rolling update), and the
// binaries are rolled back: the old release must still serve and index. Then the gate:
// a schema whose floor is above a binary's needs is refused, clearly.
//
// The previous release's build is cached in build-prev/<commit> (about a minute the
// first time, with ALM_TESTS=OFF).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { startPostgres, startRedis } from '../lib/services.mjs';
import { startAlmanac, startProbed, runAlmanac, migrate, waitFor, REPO_ROOT } from '../lib/almanac.mjs';
import { startQdrantStandin } from '../lib/qdrant-standin.mjs';
import { stackEnv } from '../lib/stack.mjs';
import { client, PASSWORD } from '../lib/apiclient.mjs';
import { sql } from '../lib/psql.mjs';

const PREVIOUS_TAG = 'v0.1.0';
const PREVIOUS_COMMIT = 'dcc78f4'; // v0.1.0, should the tag be missing from this clone

function git(...args) {
  return execFileSync('git', ['-C', REPO_ROOT, ...args], { encoding: 'utf8' }).trim();
}

/** The previous release's commit: its tag when present, else the recorded commit. */
function previousCommit() {
  for (const ref of [`${PREVIOUS_TAG}^{commit}`, `${PREVIOUS_COMMIT}^{commit}`]) {
    try {
      return git('rev-parse', '--verify', '--quiet', ref);
    } catch {
      /* try the next */
    }
  }
  throw new Error(`neither ${PREVIOUS_TAG} nor ${PREVIOUS_COMMIT} is in this clone: fetch its history (git fetch --tags)`);
}

/** Builds the previous release from git (git archive, so the work tree is untouched). */
function buildPrevious() {
  const commit = previousCommit();
  const root = path.join(REPO_ROOT, 'build-prev', commit);
  const bin = path.join(root, 'build', 'almanac');
  if (fs.existsSync(bin)) return { bin, commit };
  const src = path.join(root, 'src');
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(src, { recursive: true });
  execFileSync('bash', ['-c', `git -C "${REPO_ROOT}" archive "${commit}" | tar -x -C "${src}"`]);
  const cmake = (...args) => execFileSync('nice', ['cmake', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  cmake('-S', src, '-B', path.join(root, 'build'), '-DCMAKE_BUILD_TYPE=RelWithDebInfo', '-DALM_TESTS=OFF', `-DALM_GIT_COMMIT=${commit.slice(0, 12)}`);
  cmake('--build', path.join(root, 'build'), '-j', '2', '--target', 'almanac');
  return { bin, commit };
}

describe('upgrade from the previous release and roll back', { timeout: 600000 }, () => {
  let old;
  let pg;
  let redis;
  let q;
  let env;
  const procs = [];

  before(async () => {
    old = buildPrevious();
    pg = await startPostgres();
    redis = await startRedis();
    q = await startQdrantStandin();
    env = stackEnv(pg, redis, q);
  });
  after(async () => {
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    await pg?.stop();
    await redis?.stop();
    await q?.close();
  });

  test('the new binary says which schema versions it needs and supports', async () => {
    const r = await runAlmanac(['version', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const v = JSON.parse(r.stdout);
    assert.ok(v.schema.needs >= v.schema.floor && v.schema.floor >= 1, r.stdout);
    const text = await runAlmanac(['version']);
    assert.match(text.stdout, new RegExp(`schema: needs version ${v.schema.needs}; .* runs binaries that need ${v.schema.floor} or newer`));
  });

  test('old release with data; migrate under it; old and new side by side; roll back', async () => {
    // 1. The previous release, as deployed, with data.
    await migrate(env, [], { bin: old.bin });
    const oldSchema = Number(sql(pg, 'SELECT max(version) FROM schema_migrations'));
    const newer = JSON.parse((await runAlmanac(['version', '--json'])).stdout).schema;
    assert.ok(oldSchema < newer.needs, 'the new release brings migrations');
    assert.ok(newer.floor <= oldSchema, `the new schema still runs the previous release (floor ${newer.floor}, previous needs ${oldSchema})`);
    // Users made by the old binary (argon2 hashes from before).
    const mk = await runAlmanac(['user', 'create', '--email', 'alice@example.org'], { env, bin: old.bin, input: `${PASSWORD}\n` });
    assert.equal(mk.code, 0, mk.stderr);
    const oldApi = await startAlmanac(['api'], { env, bin: old.bin });
    const oldWorker = await startProbed('worker', env, { bin: old.bin, healthRequestMs: 1000 });
    procs.push(oldApi, oldWorker);
    const co = client(oldApi);
    let token = await co.login('alice@example.org');
    const kb = (await co.createKb(token, 'long-lived')).id;
    const upload = async (c, name) => {
      const r = await c.upload(token, kb, `${name}.md`, `# ${name}\n\nThe ${name} procedure checks valves and pumps every ${name.length} days.\n`, { type: 'text/markdown' });
      assert.equal(r.status, 202, `${name}: ${r.body}`);
      return r.json.id;
    };
    const first = [];
    for (const n of ['alpha', 'bravo', 'charlie', 'delta', 'echo']) first.push(await upload(co, n));
    await co.waitReady(token, first);

    // 2. Migrate while the old release serves (expand: nothing it uses changes).
    await migrate(env);
    assert.ok(Number(sql(pg, 'SELECT max(version) FROM schema_migrations')) === newer.needs);
    await waitFor(async () => (await co.call('GET', '/ready')).status === 200, { what: 'old api ready on the new schema' });
    const during = await upload(co, 'foxtrot');
    await co.waitReady(token, [during]);

    // 3. The rolling update: new api and worker beside the old ones.
    const newApi = await startAlmanac(['api'], { env });
    const newWorker = await startProbed('worker', env, { healthRequestMs: 1000 });
    procs.push(newApi, newWorker);
    const cn = client(newApi);
    const tokenNew = await cn.login('alice@example.org');
    // Tokens of one are accepted by the other (same secret); the same requests, the same answers.
    assert.equal((await cn.call('GET', `/api/v1/knowledge-bases/${kb}/documents`, { token })).status, 200);
    const mixed = [];
    for (let i = 0; i < 6; i++) mixed.push(await upload(i % 2 ? cn : co, `mixed-${i}`));
    await cn.waitReady(tokenNew, mixed);
    const listOld = await co.call('GET', `/api/v1/knowledge-bases/${kb}/documents`, { token });
    const listNew = await cn.call('GET', `/api/v1/knowledge-bases/${kb}/documents`, { token: tokenNew });
    assert.equal(listOld.status, 200, listOld.body);
    assert.deepEqual(listNew.json, listOld.json);
    for (const query of ['valves pumps procedure', 'mixed-3']) {
      const a = await co.search(token, { query, knowledge_base_ids: [kb], mode: 'keyword' });
      const b = await cn.search(tokenNew, { query, knowledge_base_ids: [kb], mode: 'keyword' });
      assert.equal(a.status, 200, a.body);
      assert.deepEqual(b.json.results.map((x) => x.document_id), a.json.results.map((x) => x.document_id));
    }

    // 4. Roll the binaries back: the new ones go, the old ones keep serving on the new schema.
    await newWorker.stop();
    await newApi.stop();
    token = await co.login('alice@example.org');
    const back = await upload(co, 'golf');
    const docs = await co.waitReady(token, [back, ...first, ...mixed]);
    assert.equal(docs.size, 12);
    assert.equal(q.collections.count('almanac_chunks'), Number(sql(pg, 'SELECT count(*) FROM chunks')));
    // The old release restarted on the new schema starts and serves (a rollback deploy).
    await oldApi.stop();
    const again = await startAlmanac(['api'], { env, bin: old.bin });
    procs.push(again);
    assert.equal((await client(again).call('GET', '/ready')).status, 200);
    assert.equal((await client(again).call('GET', `/api/v1/documents/${back}`, { token })).json.status, 'ready');
  });

  test('a schema whose floor is above what a binary needs is refused, clearly; compatible ones run', async () => {
    const needs = JSON.parse((await runAlmanac(['version', '--json'])).stdout).schema.needs;
    // A later release's contract step: version needs+1 that old binaries cannot run on.
    sql(pg, `INSERT INTO schema_migrations (version, name, compatible_from) VALUES (${needs + 1}, 'later_contract', ${needs + 1})`);
    const api = await startAlmanac(['api'], { env });
    procs.push(api);
    const c = client(api);
    const r = await waitFor(async () => {
      const x = await c.call('GET', '/ready');
      return x.status === 503 ? x : null;
    }, { what: '/ready 503 on an incompatible schema' });
    assert.match(JSON.stringify(r.json), new RegExp(`schema at version ${needs + 1} runs only binaries that need version ${needs + 1} or newer, this one needs ${needs}`));
    const login = await c.call('POST', '/api/v1/auth/login', { json: { email: 'alice@example.org', password: PASSWORD } });
    assert.equal(login.status, 503, login.body);
    assert.match(login.json.error.message, /newer than this server can run on/);
    const w = await runAlmanac(['reindex', '--no-wait'], { env });
    assert.equal(w.code, 1);
    assert.match(w.stderr, /runs only binaries that need version/);
    // The same later version, expand-only: this binary runs on it.
    sql(pg, `UPDATE schema_migrations SET compatible_from = ${needs} WHERE version = ${needs + 1}`);
    await waitFor(async () => (await c.call('GET', '/ready')).status === 200, { what: '/ready 200 on a compatible newer schema' });
    sql(pg, `DELETE FROM schema_migrations WHERE version = ${needs + 1}`);
    await api.stop();
  });
});
