#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Backup and restore throughput of the PostgreSQL part (the source of truth) with
# infrastructure/backup/almanac-backup.sh and almanac-restore.sh in local mode.
#
# Starts fresh PostgreSQL, Redis and the Qdrant stand-in, fills the database with SQL
# only (BENCH_MB megabytes of document text, default 50, stored twice as the upload and
# the extracted text, plus chunks of 800 characters with their full-text index, as
# ingestion writes them), then times
#   - the backup script (pg_dump -Fc, its pg_restore --list check, the manifest);
#   - pg_dump -Fc alone, the baseline measured in the same run (the script's overhead);
#   - the restore script into a fresh PostgreSQL (pg_restore, indexes rebuilt, migrate).
# Prints the database size, the dump size, seconds and MB/s of database each, and the
# figure per GB. Vectors are not timed: a Qdrant snapshot is Qdrant's own copy of its
# segment files (points × (dim × 4 bytes + payload)); the stand-in's is no measure.
# Writes ${BENCH_OUT:-/tmp}/backup-latest.json.
#
# Environment: ALMANAC_BIN (default build/almanac), BENCH_MB, BENCH_OUT.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
bench_require_binary "$root"
bench_require_tools node psql redis-server sha256sum
export BENCH_ROOT=$root
exec node --input-type=module - <<'EOF'
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const root = process.env.BENCH_ROOT;
const { startPostgres, startRedis } = await import(path.join(root, 'tests/lib/services.mjs'));
const { migrate, createUser } = await import(path.join(root, 'tests/lib/almanac.mjs'));
const { startQdrantStandin } = await import(path.join(root, 'tests/lib/qdrant-standin.mjs'));
const { stackEnv } = await import(path.join(root, 'tests/lib/stack.mjs'));
const { PASSWORD } = await import(path.join(root, 'tests/lib/apiclient.mjs'));
const { sql } = await import(path.join(root, 'tests/lib/psql.mjs'));

const MB = Number(process.env.BENCH_MB || 50);
const pgBin = path.join('/usr/lib/postgresql', fs.readdirSync('/usr/lib/postgresql').sort((a, b) => b - a)[0], 'bin');
const env = (pg, base) => {
  const u = new URL(pg.url);
  return { ...process.env, ...base, PATH: `${pgBin}:${process.env.PATH}`, ALMANAC_BACKUP_MODE: 'local', ALMANAC_RESTORE_RATE: '10000', PGHOST: u.hostname, PGPORT: u.port, PGUSER: 'almanac', PGDATABASE: 'almanac' };
};
// Asynchronous: the Qdrant stand-in answers from this very process.
const run = promisify(execFile);
const timed = async (file, args, opts) => {
  const t0 = performance.now();
  const { stdout } = await run(file, args, { maxBuffer: 64 << 20, ...opts });
  return { s: (performance.now() - t0) / 1000, out: stdout.trim() };
};

const redis = await startRedis();
const q = await startQdrantStandin();
const pg = await startPostgres();
const base = stackEnv(pg, redis, q);
await migrate(base);
await createUser(base, 'bench@example.org', PASSWORD);
sql(pg, "INSERT INTO knowledge_bases (owner_id, name) VALUES (1, 'bench')");
// Documents of 100 kB each: words from a small vocabulary, so the text compresses the
// way prose does (about 3:1), not like random bytes.
const docs = Math.max(1, Math.round((MB * 1024) / 100));
sql(pg, `
  INSERT INTO documents (knowledge_base_id, title, filename, media_type, size_bytes, sha256, content, text, status, chunk_count)
  SELECT 1, 'doc ' || g, 'doc' || g || '.txt', 'text/plain', 102400, md5(g::text) || md5((g + 1)::text), t, t, 'ready', 128
  FROM generate_series(1, ${docs}) g,
       LATERAL (SELECT string_agg((ARRAY['valve','pressure','logbook','report','backup','restore','the','of','and','policy','station','crew','morning','gasket','cabinet','number'])[1 + ((g * 31 + i * 7) % 16)] || ' ' || (i % 997), ' ') AS t
                FROM generate_series(1, 10240) i) x;
  INSERT INTO chunks (document_id, knowledge_base_id, chunk_index, text, start_offset, end_offset)
  SELECT d.id, 1, c, substr(d.text, c * 800 + 1, 800), c * 800, c * 800 + 800 FROM documents d, generate_series(0, 127) c;`);
const dbBytes = Number(sql(pg, 'SELECT pg_database_size(current_database())'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'almanac-bench-backup-'));

const backup = await timed(path.join(root, 'infrastructure/backup/almanac-backup.sh'), ['--dir', dir], { env: env(pg, base) });
const dump = await timed(path.join(pgBin, 'pg_dump'), ['-Fc', '--compress=6', '-f', path.join(dir, 'baseline.dump'), pg.url]);
const dumpBytes = fs.statSync(path.join(backup.out, 'database.dump')).size;
await pg.stop();

const pg2 = await startPostgres();
const base2 = stackEnv(pg2, redis, q);
const restore = await timed(path.join(root, 'infrastructure/backup/almanac-restore.sh'), [backup.out], { env: env(pg2, base2) });
const restored = Number(sql(pg2, 'SELECT count(*) FROM chunks'));
await pg2.stop();
await redis.stop();
await q.close();
fs.rmSync(dir, { recursive: true, force: true });

const mbps = (s) => dbBytes / 1e6 / s;
const perGb = (s) => (s * 1e9) / dbBytes;
const result = {
  database_mb: +(dbBytes / 1e6).toFixed(1),
  dump_mb: +(dumpBytes / 1e6).toFixed(1),
  backup_s: +backup.s.toFixed(2),
  pg_dump_alone_s: +dump.s.toFixed(2),
  restore_s: +restore.s.toFixed(2),
  backup_s_per_gb: +perGb(backup.s).toFixed(1),
  restore_s_per_gb: +perGb(restore.s).toFixed(1),
  script_over_pg_dump: +(backup.s / dump.s).toFixed(2),
  chunks_restored: restored,
};
if (restored !== docs * 128) throw new Error(`restored ${restored} chunks of ${docs * 128}`);
console.log(`database ${result.database_mb} MB (dump ${result.dump_mb} MB)`);
console.log(`backup  ${result.backup_s} s (${mbps(backup.s).toFixed(1)} MB/s, ${result.backup_s_per_gb} s/GB); pg_dump alone ${result.pg_dump_alone_s} s: ${result.script_over_pg_dump}x`);
console.log(`restore ${result.restore_s} s (${mbps(restore.s).toFixed(1)} MB/s, ${result.restore_s_per_gb} s/GB)`);
fs.writeFileSync(path.join(process.env.BENCH_OUT || '/tmp', 'backup-latest.json'), JSON.stringify(result, null, 2));
EOF
