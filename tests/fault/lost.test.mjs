/* SPDX-License-Identifier: Apache-2.0 */
// Fault suite, one job lost on its own (issue case 5 without a whole-Redis loss): a
// stream entry deleted by hand (XDEL). The beat's find_lost_jobs task sees a document
// pending with its job in no stream, pending list, delayed set or dead-letter stream,
// twice in a row, and queues it again exactly once; the others are left alone.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { redisCli, sleep } from '../lib/services.mjs';
import { waitFor } from '../lib/almanac.mjs';
import { sql } from '../lib/psql.mjs';
import { startSystem } from '../lib/system.mjs';

const CHECK_MS = 2000;

/** [{entry, job}] of a stream, from redis-cli's XRANGE output. */
function entries(sys, stream) {
  const out = [];
  let entry = null;
  for (const l of redisCli(sys.redis.port, 'XRANGE', `almanac:queue:${stream}`, '-', '+').split('\n')) {
    if (/^\d+-\d+$/.test(l)) entry = l;
    else if (l.startsWith('{')) out.push({ entry, job: JSON.parse(l) });
  }
  return out;
}

describe('one stream entry deleted by hand', () => {
  let sys;
  let beat;
  before(async () => {
    sys = await startSystem({ env: { ALMANAC_LOST_JOB_CHECK_MS: String(CHECK_MS) } });
    beat = await sys.beat();
  });
  after(async () => {
    await sys?.stop();
  });

  test('its document is queued again once and ends ready; the others are left alone', async () => {
    // No worker yet: the relayed jobs stay in the stream.
    const ids = await sys.uploadMany(4, 'lost-entry');
    const queued = await waitFor(() => {
      const e = entries(sys, 'ingest');
      return e.length === ids.length ? e : null;
    }, { timeoutMs: 20000, what: 'every job relayed' });
    const victim = queued.find((e) => e.job.payload.document_id === ids[1]);
    assert.ok(victim, JSON.stringify(queued));
    assert.equal(redisCli(sys.redis.port, 'XDEL', 'almanac:queue:ingest', victim.entry).trim(), '1');
    const t0 = Date.now();
    // The three other jobs wait in the stream all along: never suspected.
    await waitFor(() => beat.events('beat.jobs_lost').length > 0, { timeoutMs: 30000, what: 'the lost job found' });
    const found = Date.now() - t0;
    const ev = beat.events('beat.jobs_lost');
    assert.equal(ev.length, 1, JSON.stringify(ev));
    assert.equal(ev[0].count, 1, JSON.stringify(ev[0]));
    assert.equal(ev[0].documents, `{${ids[1]}}`);
    // Found within the grace plus two looks (plus the tick and jitter), not 15 minutes.
    assert.ok(found < 4 * CHECK_MS + 5000, `found after ${found} ms`);

    await sys.worker();
    await sys.waitReady(ids, 60000);
    // Several more looks: nothing else is queued again, each document ran once.
    await sleep(3 * CHECK_MS + 1000);
    assert.equal(beat.events('beat.jobs_lost').length, 1);
    assert.equal(sql(sys.pg, `SELECT count(*) FROM outbox`), '0');
    assert.equal(sql(sys.pg, `SELECT max(attempts) FROM documents WHERE id IN (${ids.join(',')})`), '1');
    assert.deepEqual(entries(sys, 'ingest'), [], 'nothing left in the stream');
    sys.assertIndexed(ids);
    sys.assertNoCrash();
  });
});
