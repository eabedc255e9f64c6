/* SPDX-License-Identifier: Apache-2.0 */
// `almanac reindex`: every document, one knowledge base, those whose vectors are missing;
// progress on the terminal and in the operations API; a bounded rate; a run killed
// half-way resumes where it stopped and queues each document once. Real PostgreSQL,
// Redis, api and worker, the Qdrant stand-in.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startAlmanac, runAlmanac, createUser, httpRequest, waitFor } from '../lib/almanac.mjs';
import { startStack } from '../lib/stack.mjs';
import { PASSWORD } from '../lib/apiclient.mjs';
import { sql } from '../lib/psql.mjs';

const COLLECTION = 'almanac_chunks';

describe('almanac reindex', { timeout: 300000 }, () => {
  let s;
  let admin;
  let alice;
  const kbs = [];
  const ids = [];

  before(async () => {
    s = await startStack({ users: ['alice@example.org'] });
    await createUser(s.env, 'admin@example.org', PASSWORD, { admin: true });
    alice = await s.c.login('alice@example.org');
    admin = await s.c.login('admin@example.org');
    kbs.push((await s.c.createKb(alice, 'one')).id, (await s.c.createKb(alice, 'two')).id);
    for (let i = 0; i < 30; i++) {
      const r = await s.c.upload(alice, kbs[i % 2], `doc-${i}.md`, `# Doc ${i}\n\nParagraph ${i} about pumps, valves and the logbook of station ${i}.\n`, { type: 'text/markdown' });
      assert.equal(r.status, 202, r.body);
      ids.push(r.json.id);
    }
    await s.c.waitReady(alice, ids);
  });
  after(async () => {
    if (s) await s.stop();
  });

  const summary = (r) => JSON.parse(r.stdout.trim().split('\n').pop());
  const processed = () => sql(s.pg, "SELECT string_agg(id || ':' || coalesce(extract(epoch FROM processed_at)::text, ''), ',' ORDER BY id) FROM documents");

  test('--kb queues the documents of one knowledge base, waits for them, shows progress', async () => {
    const beforeTimes = Object.fromEntries(processed().split(',').map((x) => x.split(':')));
    const r = await runAlmanac(['reindex', '--kb', String(kbs[1]), '--rate', '100'], { env: s.env, timeoutMs: 120000 });
    assert.equal(r.code, 0, r.stderr);
    const out = summary(r);
    assert.equal(out.scope, 'kb');
    assert.equal(out.queued, 15);
    assert.equal(out.ready, 15);
    assert.match(r.stderr, /reindex \d+ \(kb\): started; examined 0\/15/);
    assert.match(r.stderr, /done; examined 15\/15, queued 15, ready 15, failed 0/);
    const afterTimes = Object.fromEntries(processed().split(',').map((x) => x.split(':')));
    ids.forEach((id, i) => {
      if (i % 2 === 1) assert.notEqual(afterTimes[id], beforeTimes[id], `document ${id} of kb two processed again`);
      else assert.equal(afterTimes[id], beforeTimes[id], `document ${id} of kb one left alone`);
    });
    assert.equal(s.qdrant.collections.count(COLLECTION), Number(sql(s.pg, 'SELECT count(*) FROM chunks')));
  });

  test('--missing finds the documents whose vectors are gone and indexes only those', async () => {
    const gone = [ids[3], ids[8], ids[20]];
    for (const id of gone) {
      const r = await httpRequest(`${s.qdrant.url}/collections/${COLLECTION}/points/delete?wait=true`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ filter: { must: [{ key: 'document_id', match: { value: id } }] } }),
      });
      assert.equal(r.status, 200, r.body);
    }
    assert.ok(s.qdrant.collections.count(COLLECTION) < Number(sql(s.pg, 'SELECT count(*) FROM chunks')));
    const r = await runAlmanac(['reindex', '--missing'], { env: s.env, timeoutMs: 120000 });
    assert.equal(r.code, 0, r.stderr);
    const out = summary(r);
    assert.equal(out.examined, 30);
    assert.equal(out.queued, 3);
    assert.deepEqual(sql(s.pg, `SELECT string_agg(id::text, ',' ORDER BY id) FROM documents WHERE reindex_run = ${out.run}`), gone.sort((x, y) => x - y).join(','));
    assert.equal(s.qdrant.collections.count(COLLECTION), Number(sql(s.pg, 'SELECT count(*) FROM chunks')));
  });

  test('a bounded rate; killed half-way, the run resumes and queues each document once', async () => {
    const p = await startAlmanac(['reindex', '--rate', '2', '--no-wait'], { env: s.env, waitHealth: false });
    const t0 = Date.now();
    await waitFor(() => /started/.test(p.stderr()), { timeoutMs: 10000, what: 'reindex started' });
    await new Promise((r) => setTimeout(r, 2500));
    p.signal('SIGKILL');
    await p.waitExit();
    const elapsed = (Date.now() - t0) / 1000;
    const run = JSON.parse(sql(s.pg, "SELECT row_to_json(r) FROM reindex_runs r WHERE scope = 'all' ORDER BY id DESC LIMIT 1"));
    assert.equal(run.finished_at, null, 'the killed run is unfinished');
    assert.ok(run.queued >= 2 && run.queued <= Math.ceil(elapsed * 2) + 2, `queued ${run.queued} in ${elapsed} s at 2/s`);
    // The operations API shows it, to administrators only.
    let r = await s.c.call('GET', '/api/v1/admin/reindex', { token: admin });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.runs[0].id, run.id);
    assert.equal(r.json.runs[0].finished, false);
    assert.equal(r.json.runs[0].total, 30);
    assert.equal((await s.c.call('GET', '/api/v1/admin/reindex', { token: alice })).status, 403);

    const again = await runAlmanac(['reindex', '--rate', '1000'], { env: s.env, timeoutMs: 120000 });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`reindex ${run.id} \\(all\\): resumed; examined ${run.examined}/30`));
    const out = summary(again);
    assert.equal(out.run, run.id);
    assert.equal(out.queued, 30, 'every document queued exactly once over both processes');
    assert.equal(out.ready, 30);
    assert.equal(sql(s.pg, `SELECT count(*) FROM documents WHERE reindex_run = ${run.id}`), '30');
    r = await s.c.call('GET', '/api/v1/admin/reindex', { token: admin });
    assert.equal(r.json.runs[0].finished, true);
    assert.equal(r.json.runs[0].ready, 30);
    assert.equal(s.qdrant.collections.count(COLLECTION), Number(sql(s.pg, 'SELECT count(*) FROM chunks')));
  });

  test('bad usage exits 64 with one line', async () => {
    for (const args of [['--kb', 'x'], ['--kb', '1', '--missing'], ['--rate', '0'], ['--bogus']]) {
      const r = await runAlmanac(['reindex', ...args], { env: s.env });
      assert.equal(r.code, 64, `${args}: ${r.stderr}`);
      assert.match(r.stderr, /^almanac: reindex: /);
    }
  });
});
