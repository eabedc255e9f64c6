/* SPDX-License-Identifier: Apache-2.0 */
// Fault suite, kill -9 of the PostgreSQL postmaster during a stream of uploads, with
// synchronous_commit=on (an acknowledged commit is on disk before the client hears of
// it), then PostgreSQL started again on the same data dir and port. What must hold: every
// upload that got 202 ends ready with one chunk row and one vector per chunk (none lost,
// none left pending); an upload while PostgreSQL is down gets a 503 with a JSON error,
// neither a hang nor a dropped connection; the api and the worker live on (no crash, no
// sanitizer report); /ready fails while PostgreSQL is down and passes once it is back.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { sleep } from '../lib/services.mjs';
import { httpRequest, waitFor } from '../lib/almanac.mjs';
import { sql } from '../lib/psql.mjs';
import { startSystem, docText } from '../lib/system.mjs';

const DB_TIMEOUT_MS = 1500;
const READY_TIMEOUT_MS = 1000;
const READY_CACHE_MS = 500;
// The beat's search for documents whose job is lost; two runs in a row find one.
const LOST_JOB_CHECK_MS = 2000;
const DOWN_MS = 8000;
// An answer takes at most this long, PostgreSQL down or not.
const ANSWER_MS = 3 * DB_TIMEOUT_MS + 2000;
const SANITIZER = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/;

/** The upload's answer within ANSWER_MS: {status, json, type}, or {status: 0, error}. */
async function uploadOnce(sys, tag) {
  let timer;
  const hang = new Promise((resolve) => {
    timer = setTimeout(() => resolve({ status: 0, error: `no answer within ${ANSWER_MS} ms` }), ANSWER_MS);
  });
  const r = await Promise.race([
    sys.c.upload(sys.alice, sys.kb, `${tag}.txt`, docText(tag, 4)).catch((e) => ({ status: 0, error: e.message })),
    hang,
  ]);
  clearTimeout(timer);
  return { status: r.status, json: r.json, type: r.headers?.['content-type'], error: r.error ?? r.body };
}

async function readyStatus(url) {
  return (await httpRequest(`${url}/ready`, { timeoutMs: ANSWER_MS }).catch(() => ({ status: 0 }))).status;
}

describe('kill -9 of the PostgreSQL postmaster during uploads (synchronous_commit=on)', () => {
  let sys;
  let worker;
  before(async () => {
    sys = await startSystem({
      pgSettings: { synchronous_commit: 'on' },
      env: {
        ALMANAC_DB_TIMEOUT_MS: String(DB_TIMEOUT_MS),
        ALMANAC_READY_TIMEOUT_MS: String(READY_TIMEOUT_MS),
        ALMANAC_READY_CACHE_MS: String(READY_CACHE_MS),
        ALMANAC_LOST_JOB_CHECK_MS: String(LOST_JOB_CHECK_MS),
        ALMANAC_JOB_MAX_ATTEMPTS: '3',
      },
    });
    worker = await sys.worker();
    await sys.beat();
  });
  after(async () => {
    await sys?.stop();
  });

  test('every 202 ends ready, uploads meanwhile get a 503 JSON error, /ready tells the truth, nothing crashes', async () => {
    assert.equal(sql(sys.pg, 'SHOW synchronous_commit'), 'on');
    const answers = []; // {t0, t1, status, json, type, error}
    let stop = false;
    let n = 0;
    const uploader = async () => {
      while (!stop) {
        const t0 = Date.now();
        const r = await uploadOnce(sys, `postmaster-${n++}`);
        answers.push({ t0, t1: Date.now(), ...r });
        if (r.status !== 202) await sleep(200);
      }
    };
    const loops = [uploader(), uploader()];
    await waitFor(() => answers.filter((a) => a.status === 202).length >= 8, { timeoutMs: 30000, what: 'uploads before the kill' });
    await waitFor(() => sql(sys.pg, "SELECT count(*) FROM documents WHERE status = 'ready'") !== '0', { timeoutMs: 30000, what: 'a document ready before the kill' });

    const killedAt = Date.now();
    const pid = await sys.pg.killPostmaster();
    assert.ok(pid > 0);
    const down = [];
    while (Date.now() - killedAt < DOWN_MS) {
      const t = Date.now();
      down.push({ t, api: await readyStatus(sys.api.url), worker: await readyStatus(worker.probeUrl) });
      await sleep(250);
    }
    const restartAt = Date.now();
    await sys.pg.start();
    const upAt = Date.now();
    await waitFor(async () => (await readyStatus(sys.api.url)) === 200 && (await readyStatus(worker.probeUrl)) === 200, {
      timeoutMs: 30000,
      what: 'api and worker /ready pass once PostgreSQL is back',
    });
    const readyAgain = Date.now() - upAt;
    await waitFor(() => answers.some((a) => a.t0 > upAt && a.status === 202), { timeoutMs: 30000, what: 'an upload accepted after the restart' });
    stop = true;
    await Promise.all(loops);

    // Uploads: a 202, or (PostgreSQL away) a 503 with a JSON error; never a hang or a drop.
    const odd = answers.filter((a) => a.status !== 202 && !(a.status === 503 && a.json && typeof a.json.error === 'object'));
    assert.deepEqual(odd, [], 'every upload got a 202 or a 503 JSON error');
    const whileDown = answers.filter((a) => a.t0 >= killedAt && a.t1 <= restartAt);
    assert.ok(whileDown.length > 0, 'uploads were tried while PostgreSQL was down');
    assert.deepEqual(whileDown.filter((a) => a.status !== 503), [], 'every upload while PostgreSQL was down got 503');
    assert.ok(whileDown.every((a) => /application\/json/.test(a.type ?? '')), 'the 503s are JSON');

    // /ready failed while PostgreSQL was down (once the cached result from before is stale).
    const settled = down.filter((d) => d.t - killedAt > READY_CACHE_MS + READY_TIMEOUT_MS);
    assert.ok(settled.length > 0);
    assert.deepEqual(settled.filter((d) => d.api !== 503), [], 'api /ready fails while PostgreSQL is down');
    assert.deepEqual(settled.filter((d) => d.worker !== 503), [], 'worker /ready fails while PostgreSQL is down');

    // Every accepted upload is durable and ends ready, the lost-job search included.
    const accepted = answers.filter((a) => a.status === 202).map((a) => a.json.id);
    assert.equal(sql(sys.pg, `SELECT count(*) FROM documents WHERE id IN (${accepted.join(',')})`), String(accepted.length), 'no accepted upload lost');
    await sys.waitReady(accepted, 60000);
    const allReady = Date.now() - upAt;
    sys.assertIndexed(accepted);
    assert.equal(sql(sys.pg, "SELECT count(*) FROM documents WHERE status <> 'ready'"), '0', 'nothing pending, processing or failed');

    // The api and the worker lived through it, sanitizers silent.
    assert.ok(!sys.api.exited, 'api alive');
    assert.ok(!worker.exited, 'worker alive');
    sys.assertNoCrash();
    for (const p of sys.procs) assert.doesNotMatch(p.output(), SANITIZER, `${p.proc.spawnargs.slice(1).join(' ')}: sanitizer report`);
    console.log(
      `postmaster ${pid} killed; ${accepted.length} uploads accepted, ${whileDown.length} answered 503 while down; ` +
        `/ready passed ${readyAgain} ms and every document was ready ${allReady} ms after the restart`,
    );
  });
});
