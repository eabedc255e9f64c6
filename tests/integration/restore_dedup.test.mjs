/* SPDX-License-Identifier: Apache-2.0 */
// A database restored from a dump must not collide with what Redis remembers: the
// relay's de-duplication markers (almanac:outbox:sent:<key>, 7 days) outlive a restore,
// and outbox ids start over from the dump's sequence. With ids as keys, the next upload
// after a restore got an id sent before, the relay skipped it as already sent, and the
// document stayed pending. Real PostgreSQL (pg_dump -Fc / pg_restore), real Redis kept
// across the restore, real api and worker.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

import { startPostgres, startRedis, redisCli } from '../lib/services.mjs';
import { startAlmanac, startProbed, migrate, createUser } from '../lib/almanac.mjs';
import { startQdrantStandin } from '../lib/qdrant-standin.mjs';
import { stackEnv } from '../lib/stack.mjs';
import { client, PASSWORD } from '../lib/apiclient.mjs';
import { sql } from '../lib/psql.mjs';

const pgBin = (pg, tool) => path.join(path.dirname(execFileSync('bash', ['-c', `ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1`], { encoding: 'utf8' }).trim()), 'bin', tool);
const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => {});
});

async function up(pg, redis, q) {
  const env = stackEnv(pg, redis, q);
  const api = await startAlmanac(['api'], { env });
  const worker = await startProbed('worker', env, { healthRequestMs: 1000 });
  return { env, api, worker, c: client(api), async stop() { await worker.stop(); await api.stop(); } };
}

test('uploads after restoring an older dump become ready although Redis remembers the reused ids', async () => {
  const redis = await startRedis();
  const q = await startQdrantStandin();
  const pg1 = await startPostgres();
  cleanup.push(() => redis.stop(), () => q.close(), () => pg1.stop());
  await migrate(stackEnv(pg1, redis, q));
  await createUser(stackEnv(pg1, redis, q), 'dedup@example.org', PASSWORD);

  let s = await up(pg1, redis, q);
  let token = await s.c.login('dedup@example.org');
  const kb = (await s.c.createKb(token, 'before')).id;
  const upload = async (c, name) => {
    const r = await c.upload(token, kb, `${name}.txt`, `Document ${name}: ${name} talks about ${name} and nothing else.\n`);
    assert.equal(r.status, 202, r.body);
    return r.json.id;
  };
  await s.c.waitReady(token, [await upload(s.c, 'alpha')]);

  // The dump, then work the dump does not hold: its outbox rows are sent and marked.
  const dump = path.join(pg1.dir, 'almanac.dump');
  execFileSync(pgBin(pg1, 'pg_dump'), ['-Fc', '-f', dump, pg1.ownerUrl]);
  const later = [await upload(s.c, 'bravo'), await upload(s.c, 'charlie')];
  await s.c.waitReady(token, later);
  const markers = redisCli(redis.port, '--scan', '--pattern', 'almanac:outbox:sent:*').trim().split('\n').filter(Boolean);
  assert.ok(markers.length >= 3, `dedup markers in Redis: ${markers.length}`);
  await s.stop();
  await pg1.stop();

  // Restore into a fresh PostgreSQL (an empty schema with the application role's rights);
  // Redis stays as it was.
  const pg2 = await startPostgres();
  cleanup.push(() => pg2.stop());
  execFileSync(pgBin(pg2, 'pg_restore'), ['--no-owner', '--exit-on-error', '-d', pg2.ownerUrl, dump]);
  assert.equal(sql(pg2, 'SELECT count(*) FROM documents'), '1');
  s = await up(pg2, redis, q);
  token = await s.c.login('dedup@example.org');
  // The identity sequence hands out the ids bravo and charlie had before the restore.
  const fresh = [await upload(s.c, 'delta'), await upload(s.c, 'echo')];
  assert.deepEqual(fresh, later, 'the restored sequence reuses the ids sent after the dump');
  const docs = await s.c.waitReady(token, fresh, { timeoutMs: 60000 });
  for (const d of docs.values()) assert.ok(d.chunk_count > 0);
  await s.stop();
});
