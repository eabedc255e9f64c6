/* SPDX-License-Identifier: Apache-2.0 */
// Fault suite, PostgreSQL (issue cases 1 and 2): every process of PostgreSQL frozen with
// SIGSTOP during uploads, rows locked past every deadline, new connections refused. What
// must hold: every accepted document ends ready with one chunk row and one vector per
// chunk, no worker thread is left wedged, the server ends every abandoned statement
// (pg_stat_activity stays bounded), and /ready fails while the process cannot get a
// working connection.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

import { sleep } from '../lib/services.mjs';
import { httpRequest, waitFor } from '../lib/almanac.mjs';
import { sql } from '../lib/psql.mjs';
import { startSystem, docText } from '../lib/system.mjs';

const DB_TIMEOUT_MS = 1500;
const POOL = 4;

/** Connections to the almanac database by application_name (pg_stat_activity). */
function connections(pg) {
  const out = sql(pg, "SELECT application_name, state, count(*) FROM pg_stat_activity WHERE datname = 'almanac' AND pid <> pg_backend_pid() GROUP BY 1, 2 ORDER BY 1, 2");
  const rows = out ? out.split('\n').map((l) => l.split('|')) : [];
  return { rows, total: rows.reduce((n, r) => n + Number(r[2]), 0) };
}

/** A psql session that takes a row lock and keeps it until release(). */
function lockRow(pg, table, id) {
  const p = spawn('psql', [pg.url, '-X', '-q', '-v', 'ON_ERROR_STOP=1'], { stdio: ['pipe', 'pipe', 'pipe'] });
  p.stdin.write(`SET application_name = 'fault-locker'; BEGIN; SELECT id FROM ${table} WHERE id = ${id} FOR UPDATE; SELECT 'locked';\n`);
  const locked = new Promise((resolve) => p.stdout.on('data', (d) => d.toString().includes('locked') && resolve()));
  return {
    locked,
    release: () =>
      new Promise((resolve) => {
        p.once('exit', resolve);
        p.stdin.end('ROLLBACK;\n');
      }),
  };
}

async function readyStatus(url) {
  return (await httpRequest(`${url}/ready`, { timeoutMs: 8000 })).status;
}

describe('PostgreSQL frozen (SIGSTOP of every process) during uploads', () => {
  let sys;
  let worker;
  before(async () => {
    sys = await startSystem({ env: { ALMANAC_DB_TIMEOUT_MS: String(DB_TIMEOUT_MS), ALMANAC_DB_POOL_SIZE: String(POOL), ALMANAC_READY_TIMEOUT_MS: '1000' } });
    worker = await sys.worker();
    await sys.beat();
  });
  after(async () => {
    sys?.pg.thaw();
    await sys?.stop();
  });

  test('every accepted upload ends ready; connections stay bounded; /ready fails during the freeze', async () => {
    const accepted = [];
    let stop = false;
    let n = 0;
    const uploader = async () => {
      while (!stop) {
        const tag = `frozen-${n++}`;
        const r = await sys.c.upload(sys.alice, sys.kb, `${tag}.txt`, docText(tag, 6), {}).catch(() => null);
        if (r?.status === 202) accepted.push(r.json.id);
        else await sleep(100);
      }
    };
    const loops = [uploader(), uploader(), uploader()];
    await waitFor(() => accepted.length >= 10, { timeoutMs: 30000, what: 'uploads before the freeze' });
    const before = connections(sys.pg).total;
    sys.pg.freeze();
    const apiDuring = [];
    const workerDuring = [];
    const t0 = Date.now();
    while (Date.now() - t0 < 10000) {
      apiDuring.push(await readyStatus(sys.api.url));
      workerDuring.push(await readyStatus(worker.probeUrl));
      await sleep(500);
    }
    sys.pg.thaw();
    await sleep(3000);
    stop = true;
    await Promise.all(loops);
    assert.ok(apiDuring.includes(503), `api /ready failed during the freeze: ${apiDuring}`);
    assert.ok(workerDuring.includes(503), `worker /ready failed during the freeze: ${workerDuring}`);
    assert.ok(accepted.length > 10, `uploads accepted: ${accepted.length}`);
    await sys.waitReady(accepted);
    sys.assertIndexed(accepted);
    // api pool + its checks + relay; worker threads + checks; beat + checks; psql itself.
    const bound = POOL + 3 + 2 + 3 + 1 + 3 + 1;
    const after2 = connections(sys.pg);
    assert.ok(after2.total <= bound, `connections after the freeze ${JSON.stringify(after2.rows)} (before: ${before}, bound ${bound})`);
    await waitFor(async () => (await readyStatus(sys.api.url)) === 200, { timeoutMs: 20000, what: 'api ready again' });
    await waitFor(async () => (await readyStatus(worker.probeUrl)) === 200, { timeoutMs: 20000, what: 'worker ready again' });
    // The documents waited; none spent an attempt on the outage it did not cause.
    const failedAttempts = sql(sys.pg, `SELECT count(*) FROM documents WHERE id IN (${accepted.join(',')}) AND status <> 'ready'`);
    assert.equal(failedAttempts, '0');
    sys.assertNoCrash();
  });
});

describe('statements past their deadline', () => {
  let sys;
  let worker;
  before(async () => {
    // More request threads than pooled connections, so the pool itself can run out.
    sys = await startSystem({
      env: { ALMANAC_DB_TIMEOUT_MS: String(DB_TIMEOUT_MS), ALMANAC_DB_POOL_SIZE: String(POOL), ALMANAC_HTTP_THREADS: String(POOL * 2), ALMANAC_WORKER_CONCURRENCY: '2' },
    });
    worker = await sys.worker();
  });
  after(async () => {
    await sys?.stop();
  });

  test('a locked document times the worker out, the thread is not wedged, later jobs run', async () => {
    // The row is locked before any worker sees the document: its statements wait on it.
    await worker.stop();
    const [first] = await sys.uploadMany(1, 'lock-first');
    const lock = lockRow(sys.pg, 'documents', first);
    await lock.locked;
    worker = await sys.worker();
    await waitFor(() => worker.events('job.retry').length >= 1, { timeoutMs: 20000, what: 'the locked document timed out once' });
    const later = await sys.uploadMany(4, 'after-lock');
    await sys.waitReady(later);
    await lock.release();
    await sys.waitReady([first]);
    sys.assertIndexed([first, ...later]);
    // No session of the services was left mid-statement or inside a transaction.
    await waitFor(
      () =>
        sql(
          sys.pg,
          "SELECT count(*) FROM pg_stat_activity WHERE datname = 'almanac' AND application_name LIKE 'almanac%' AND state IN ('active', 'idle in transaction', 'idle in transaction (aborted)') AND pid <> pg_backend_pid()",
        ) === '0',
      { timeoutMs: 10000, what: 'no service session active or idle in transaction' },
    );
    assert.equal((await worker.probe('/health')).status, 200);
    sys.assertNoCrash();
  });

  test('requests blocked by a lock give up on the server too: connections stay bounded, others are served', async () => {
    const [doc] = await sys.uploadMany(1, 'delete-locked');
    await sys.waitReady([doc]);
    const lock = lockRow(sys.pg, 'documents', doc);
    await lock.locked;
    const calls = [];
    for (let i = 0; i < 40; i++) calls.push(sys.c.call('DELETE', `/api/v1/documents/${doc}`, { token: sys.alice, timeoutMs: 90000 }));
    await sleep(DB_TIMEOUT_MS);
    const during = connections(sys.pg).total;
    const statuses = (await Promise.all(calls)).map((x) => x.status);
    assert.ok(statuses.every((s) => s === 503 || s === 504), `statuses: ${statuses}`);
    assert.ok(during <= POOL + 12, `connections while 40 deletes wait: ${during}`);
    // The server ended every abandoned statement: nothing of ours waits on the lock now.
    await waitFor(
      () => sql(sys.pg, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name LIKE 'almanac%'") === '0',
      { timeoutMs: 5000, what: 'no statement still waiting on the lock' },
    );
    // Another user's request is served meanwhile.
    const other = await sys.c.call('GET', '/api/v1/knowledge-bases', { token: sys.admin });
    assert.equal(other.status, 200);
    await lock.release();
    const done = await sys.c.call('DELETE', `/api/v1/documents/${doc}`, { token: sys.alice });
    assert.equal(done.status, 200, done.body);
  });

  test('/ready fails while no new connection can be had, and recovers', async () => {
    assert.equal(await readyStatus(sys.api.url), 200);
    const admin = { url: sys.pg.ownerUrl.replace(/\/almanac$/, '/postgres') };
    sql(admin, 'ALTER DATABASE almanac ALLOW_CONNECTIONS false');
    try {
      // The pool's connections go; the check's own one stays, as under "too many clients".
      sql(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'almanac'");
      const r = await sys.c.call('GET', '/api/v1/knowledge-bases', { token: sys.alice });
      const r2 = await sys.c.call('GET', '/api/v1/knowledge-bases', { token: sys.alice });
      assert.ok([r.status, r2.status].includes(503), `requests: ${r.status} ${r2.status}`);
      // Requests go on meanwhile, as they do in production: each one finds a dead pooled
      // connection (as many as earlier tests left idle) or tries a new one, which fails;
      // from the first failed attempt /ready fails.
      await waitFor(async () => {
        await sys.c.call('GET', '/api/v1/knowledge-bases', { token: sys.alice });
        return (await readyStatus(sys.api.url)) === 503;
      }, { timeoutMs: 5000, what: '/ready fails' });
    } finally {
      sql(admin, 'ALTER DATABASE almanac ALLOW_CONNECTIONS true');
    }
    await waitFor(async () => (await sys.c.call('GET', '/api/v1/knowledge-bases', { token: sys.alice })).status === 200, { timeoutMs: 10000, what: 'requests served again' });
    await waitFor(async () => (await readyStatus(sys.api.url)) === 200, { timeoutMs: 15000, what: '/ready passes again' });
  });
});
