#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Ingestion throughput of `almanac worker`, with the built-in hashing embedder and the
# Qdrant stand-in, against PostgreSQL's own write speed for the same chunk rows.
#
# Generates BENCH_MB megabytes of Markdown-like documents (headings, paragraphs, lists;
# deterministic), then for each worker concurrency in BENCH_CONCURRENCY: starts fresh
# PostgreSQL, Redis, the Qdrant stand-in, the api and the worker, uploads every document
# and measures the time from the first upload to the last document ready (PostgreSQL's
# own created_at / processed_at). Prints MB/s and chunks/s, in total and per worker
# thread.
#
# Baseline, in the same run: the chunk rows the worker wrote are copied out, and a COPY
# of the same rows into a table like `chunks` (its generated tsvector and GIN index
# included) is timed, so "ratio" reads as how close ingestion gets to the database's own
# write speed for its output (extraction, chunking, embedding and Qdrant come on top).
#
# Environment:
#   ALMANAC_BIN        binary to measure (default build/almanac)
#   BENCH_MB           megabytes of text (default 8)
#   BENCH_DOC_KB       size of one document in KiB (default 64)
#   BENCH_CONCURRENCY  worker threads to try (default "1 2")
#   BENCH_OUT          directory of ingest-latest.json (default /tmp)
#   BENCH_LIMIT_DOC    1 (default) or 0: after the runs above, one document at the upload
#                      limit (ALMANAC_MAX_UPLOAD_BYTES, 20 MiB) on a fresh stack with the
#                      default settings and 2 worker threads: time to ready, then its
#                      reprocess, and the worker's peak RSS (VmHWM), against the job
#                      deadline (ALMANAC_JOB_TIMEOUT_MS, 300 s)
#
# The Qdrant stand-in runs inside this script's node process (it validates every request
# against the contract): on a small machine it competes with the worker for CPU, so the
# end-to-end figures are a lower bound; the worker's own CPU time gives the throughput per
# core of the ingestion code itself. Target (performance issue): >= 5 MB/s per core.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
bench_require_binary "$root"
bench_require_tools node psql redis-server
export BENCH_ROOT=$root
exec node --input-type=module - <<'EOF'
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = process.env.BENCH_ROOT;
const { startStack } = await import(path.join(root, 'tests/lib/stack.mjs'));
const { sql } = await import(path.join(root, 'tests/lib/psql.mjs'));
const { sleep } = await import(path.join(root, 'tests/lib/services.mjs'));

const MB = Number(process.env.BENCH_MB || 8);
const DOC_KB = Number(process.env.BENCH_DOC_KB || 64);
const CONC = (process.env.BENCH_CONCURRENCY || '1 2').split(/\s+/).filter(Boolean).map(Number);

// ------------------------------------------------ deterministic Markdown-like text
let seed = 42;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const pick = (a) => a[Math.floor(rnd() * a.length)];
const WORDS = (
  'the a of to and in for on with by from as is are be was were that this which it its our your ' +
  'team customer service account invoice policy request review deploy release incident backup ' +
  'restore workspace member seat billing payment refund export import search index query result ' +
  'document chunk section heading paragraph vector keyword ranking latency throughput database ' +
  'server client network timeout retry error warning alert dashboard metric report budget travel ' +
  'expense receipt approval manager leave holiday office badge laptop equipment security password ' +
  'token session permission role admin owner guest migration schema column table replica cluster ' +
  'region storage encryption key certificate audit log retention deletion trash archive weekly ' +
  'monthly quarterly annual daily usually never always quickly carefully within before after during'
).split(' ');
const sentence = () => {
  const n = 8 + Math.floor(rnd() * 14);
  const w = Array.from({ length: n }, () => pick(WORDS));
  w[0] = w[0][0].toUpperCase() + w[0].slice(1);
  if (rnd() < 0.2) w.splice(3, 0, String(Math.floor(rnd() * 500)));
  return w.join(' ') + pick(['.', '.', '.', '?', ';']).replace(';', '.');
};
function makeDoc(i, bytes) {
  const out = [`# Handbook page ${i}: ${pick(WORDS)} ${pick(WORDS)}`, ''];
  let size = out[0].length;
  while (size < bytes) {
    let block;
    const r = rnd();
    if (r < 0.08) block = `## ${sentence().slice(0, 40)}`;
    else if (r < 0.16) block = Array.from({ length: 3 + Math.floor(rnd() * 4) }, () => `- ${sentence()}`).join('\n');
    else block = Array.from({ length: 3 + Math.floor(rnd() * 5) }, sentence).join(' ');
    out.push(block, '');
    size += block.length + 2;
  }
  return out.join('\n');
}
const docs = [];
for (let total = 0, i = 0; total < MB * 1e6; i++) {
  const d = makeDoc(i, Math.min(DOC_KB * 1024, MB * 1e6 - total));
  docs.push(d);
  total += Buffer.byteLength(d);
}
const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d), 0);
console.log(`bench ingest: ${docs.length} documents, ${(bytes / 1e6).toFixed(2)} MB, ${os.cpus().length} CPUs`);

const results = [];
for (const conc of CONC) {
  const s = await startStack({
    env: { ALMANAC_LOG_LEVEL: 'warn', ALMANAC_WORKER_CONCURRENCY: String(conc), ALMANAC_MAX_UPLOAD_BYTES: String(64 << 20) },
    worker: true,
  });
  try {
    const token = await s.c.login('alice@example.org');
    const kb = await s.c.createKb(token, 'bench');
    // upload with a few requests in flight; the clock runs from the first upload
    let next = 0;
    const uploader = async () => {
      while (next < docs.length) {
        const i = next++;
        const r = await s.c.upload(token, kb.id, `page-${i}.md`, docs[i], { type: 'text/markdown' });
        if (r.status !== 202) throw new Error(`upload ${i}: HTTP ${r.status} ${r.body}`);
      }
    };
    await Promise.all([uploader(), uploader(), uploader(), uploader()]);
    const deadline = Date.now() + 30 * 60 * 1000;
    for (;;) {
      const [ready, failed] = sql(s.pg, "SELECT count(*) FILTER (WHERE status = 'ready'), count(*) FILTER (WHERE status = 'failed') FROM documents").split('|').map(Number);
      if (failed) throw new Error(`${failed} documents failed: ${sql(s.pg, "SELECT error FROM documents WHERE status = 'failed' LIMIT 1")}`);
      if (ready === docs.length) break;
      if (Date.now() > deadline) throw new Error(`only ${ready}/${docs.length} ready after 30 min`);
      await sleep(100);
    }
    const secs = Number(sql(s.pg, 'SELECT extract(epoch FROM max(processed_at) - min(created_at)) FROM documents'));
    // The worker's own CPU time (user + system, in clock ticks of 1/100 s): MB per
    // CPU-second is the throughput per core of our code, apart from what the database,
    // the stand-in and the uploads cost on the same cores.
    const stat = fs.readFileSync(`/proc/${s.worker.proc.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const workerCpu = (Number(stat[11]) + Number(stat[12])) / 100;
    const chunks = Number(sql(s.pg, 'SELECT count(*) FROM chunks'));
    const points = s.qdrant.collections.count('almanac_chunks');
    if (points !== chunks) throw new Error(`Qdrant holds ${points} points for ${chunks} chunks`);

    // baseline: the same rows, COPY'd into a table like chunks (tsvector + GIN index)
    const dump = path.join(s.pg.dir, 'chunks.copy');
    sql(s.pg, `COPY (SELECT document_id, knowledge_base_id, chunk_index, text, start_offset, end_offset, section FROM chunks) TO '${dump}'`);
    sql(s.pg, 'CREATE TABLE chunks_baseline (LIKE chunks INCLUDING ALL)');
    const t0 = performance.now();
    sql(s.pg, `COPY chunks_baseline (document_id, knowledge_base_id, chunk_index, text, start_offset, end_offset, section) FROM '${dump}'`);
    const copySecs = (performance.now() - t0) / 1000;
    const r = {
      concurrency: conc,
      documents: docs.length,
      mb: bytes / 1e6,
      chunks,
      seconds: secs,
      mb_per_s: bytes / 1e6 / secs,
      chunks_per_s: chunks / secs,
      mb_per_s_per_thread: bytes / 1e6 / secs / conc,
      chunks_per_s_per_thread: chunks / secs / conc,
      worker_cpu_seconds: workerCpu,
      mb_per_worker_cpu_s: bytes / 1e6 / workerCpu,
      baseline_copy_seconds: copySecs,
      baseline_mb_per_s: bytes / 1e6 / copySecs,
    };
    r.ratio_to_baseline = r.mb_per_s / r.baseline_mb_per_s;
    results.push(r);
    console.log(
      `concurrency ${conc}: ${secs.toFixed(2)} s, ${r.mb_per_s.toFixed(2)} MB/s (${r.mb_per_s_per_thread.toFixed(2)} per thread), ` +
        `${r.chunks_per_s.toFixed(0)} chunks/s (${r.chunks_per_s_per_thread.toFixed(0)} per thread); ` +
        `worker CPU ${workerCpu.toFixed(2)} s = ${r.mb_per_worker_cpu_s.toFixed(2)} MB per CPU-second; ` +
        `PostgreSQL COPY of the same ${chunks} rows: ${copySecs.toFixed(2)} s = ${r.baseline_mb_per_s.toFixed(2)} MB/s; ratio ${r.ratio_to_baseline.toFixed(2)}`,
    );
  } finally {
    await s.stop();
  }
}
// ------------------------------------------------ one document at the upload limit
let limitDoc = null;
if ((process.env.BENCH_LIMIT_DOC || '1') !== '0') {
  const LIMIT = 20 * 1024 * 1024;
  const s = await startStack({ env: { ALMANAC_LOG_LEVEL: 'warn', ALMANAC_WORKER_CONCURRENCY: '2' }, worker: true });
  try {
    const token = await s.c.login('alice@example.org');
    const kb = await s.c.createKb(token, 'limit');
    let text = '';
    for (let i = 0; text.length < LIMIT; i++) text += makeDoc(100000 + i, 256 * 1024) + '\n\n';
    text = text.slice(0, LIMIT);
    const waitReady = async (id, what) => {
      const t0 = performance.now();
      for (;;) {
        const st = sql(s.pg, `SELECT status FROM documents WHERE id = ${id}`);
        if (st === 'ready') return (performance.now() - t0) / 1000;
        if (st === 'failed') throw new Error(`${what}: failed: ${sql(s.pg, `SELECT error FROM documents WHERE id = ${id}`)}`);
        if (performance.now() - t0 > 300000) throw new Error(`${what}: not ready within the 300 s job deadline`);
        await sleep(100);
      }
    };
    const up = await s.c.upload(token, kb.id, 'limit.md', text, { type: 'text/markdown' });
    if (up.status !== 202) throw new Error(`upload at the limit: HTTP ${up.status} ${up.body}`);
    const first = await waitReady(up.json.id, 'document at the upload limit');
    const again = await s.c.call('POST', `/api/v1/documents/${up.json.id}/reprocess`, { token });
    if (again.status !== 202) throw new Error(`reprocess: HTTP ${again.status}`);
    const second = await waitReady(up.json.id, 'its reprocess');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${s.worker.proc.pid}/status`, 'utf8'));
    const chunks = Number(sql(s.pg, `SELECT chunk_count FROM documents WHERE id = ${up.json.id}`));
    limitDoc = { bytes: LIMIT, chunks, ready_s: first, reprocess_ready_s: second, job_deadline_s: 300, worker_peak_rss_mb: hwm ? Number(hwm[1]) / 1024 : null };
    console.log(
      `document at the upload limit (${(LIMIT / 1048576).toFixed(0)} MiB, ${chunks} chunks): ready in ${first.toFixed(1)} s, ` +
        `reprocessed in ${second.toFixed(1)} s (job deadline 300 s); worker peak RSS ${limitDoc.worker_peak_rss_mb?.toFixed(1)} MB`,
    );
  } finally {
    await s.stop();
  }
}

const best = Math.max(...results.map((r) => r.mb_per_worker_cpu_s));
const wall = Math.max(...results.map((r) => r.mb_per_s_per_thread));
console.log(
  `target >= 5 MB/s per core: ${best.toFixed(2)} MB per worker CPU-second -> ${best >= 5 ? 'met' : 'NOT met'} ` +
    `(end to end ${wall.toFixed(2)} MB/s per worker thread, with the database and the stand-in on the same cores)`,
);
const cmd = `ALMANAC_BIN=${process.env.ALMANAC_BIN} BENCH_MB=${MB} BENCH_DOC_KB=${DOC_KB} BENCH_CONCURRENCY="${CONC.join(' ')}" bench/ingest.sh`;
console.log(`reproduce: ${cmd}`);
const outDir = process.env.BENCH_OUT || '/tmp';
fs.writeFileSync(path.join(outDir, 'ingest-latest.json'), JSON.stringify({ cpus: os.cpus().length, command: cmd, results, limit_document: limitDoc }, null, 2) + '\n');
process.exit(0);
EOF
