#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Keyword search latency of `almanac api` over BENCH_CHUNKS chunks (default 100,000),
# against the same SQL run directly through psql.
#
# Starts fresh PostgreSQL, Redis and the api (no Qdrant: mode keyword never needs it),
# fills the database with SQL only (generate_series over a word list: documents rows and
# their chunks, ~100 chunks a document, in one knowledge base), then asks BENCH_QUERIES
# varied queries (2 to 6 words, some phrased as questions) one at a time:
#   - through POST /api/v1/search {"mode":"keyword","limit":10} over one keep-alive
#     connection (plain node), after a warm-up pass;
#   - the api's keyword SQL (copied from src/search.c, keyword_rows) as a prepared
#     statement through psql with \timing, over TCP like the api.
# Prints p50 / p99 / mean of both and their ratio (the api's overhead: authentication,
# the knowledge-base check, JSON). Writes ${BENCH_OUT:-/tmp}/search-latest.json.
#
# Environment: ALMANAC_BIN (default build/almanac), BENCH_CHUNKS, BENCH_QUERIES (300),
# BENCH_OUT. Target (performance issue): keyword search p99 <= 50 ms.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
bench_require_binary "$root"
bench_require_tools node psql redis-server
export BENCH_ROOT=$root
exec node --input-type=module - <<'EOF'
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

const root = process.env.BENCH_ROOT;
const { startStack } = await import(path.join(root, 'tests/lib/stack.mjs'));
const { sql } = await import(path.join(root, 'tests/lib/psql.mjs'));

const N_CHUNKS = Number(process.env.BENCH_CHUNKS || 100000);
const N_QUERIES = Number(process.env.BENCH_QUERIES || 300);
const PER_DOC = 100;

let seed = 7;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const pick = (a) => a[Math.floor(rnd() * a.length)];

// A vocabulary with a Zipf-like skew: common words repeat, rare ones are selective.
const BASE = (
  'account invoice policy request review deploy release incident backup restore workspace member ' +
  'seat billing payment refund export import search index query result document section heading ' +
  'vector keyword ranking latency throughput database server client network timeout retry error ' +
  'warning alert dashboard metric report budget travel expense receipt approval manager leave ' +
  'holiday office badge laptop equipment security password token session permission role admin ' +
  'owner guest migration schema column table replica cluster region storage encryption key ' +
  'certificate audit log retention deletion trash archive weekly monthly quarterly annual daily ' +
  'customer support escalation ticket priority contract renewal discount quote onboarding training ' +
  'mentor interview hiring salary bonus pension insurance parking canteen lunch printer wifi vpn'
).split(/\s+/);
const STOP = 'the a of to and in for on with by from as is are be was that this which it our your'.split(' ');
const rare = [];
for (let i = 0; i < 3000; i++) {
  const syl = ['ka', 'lo', 'mi', 'ren', 'tos', 'va', 'qui', 'del', 'sar', 'fen', 'bro', 'nix'];
  rare.push(pick(syl) + pick(syl) + pick(syl) + (i % 7 === 0 ? 'ing' : ''));
}
const vocab = [...BASE, ...rare];

const s = await startStack({ qdrant: false, env: { ALMANAC_LOG_LEVEL: 'warn', ALMANAC_DB_POOL_SIZE: '8' }, worker: false });
const results = {};
try {
  const token = await s.c.login('alice@example.org');
  const kb = await s.c.createKb(token, 'bench');
  const nDocs = Math.ceil(N_CHUNKS / PER_DOC);
  const t0 = performance.now();
  // Words with weights: base words (and stop words) far more often than rare ones.
  const words = vocab.map((w, i) => `('${w}', ${i < BASE.length ? 30 : 1})`).concat(STOP.map((w) => `('${w}', 60)`));
  sql(
    s.pg,
    `CREATE TEMP TABLE w0 (w text, weight int);
     INSERT INTO w0 VALUES ${words.join(',')};
     CREATE UNLOGGED TABLE bench_words AS SELECT row_number() OVER () AS i, w FROM w0, generate_series(1, weight);
     CREATE UNLOGGED TABLE bench_sentences AS
       SELECT g.s AS id, initcap(string_agg(bw.w, ' ' ORDER BY g.k)) || '.' AS t
         FROM (SELECT s, k, 1 + floor(random() * (SELECT count(*) FROM bench_words))::int AS r
                 FROM generate_series(1, 20000) s, generate_series(1, 14) k) g
         JOIN bench_words bw ON bw.i = g.r
        GROUP BY g.s;`,
  );
  sql(
    s.pg,
    `INSERT INTO documents (knowledge_base_id, title, filename, media_type, size_bytes, sha256, content, status, chunk_count, processed_at)
       SELECT ${kb.id}, 'Synthetic page ' || d, 'page-' || d || '.txt', 'text/plain', 0, md5(d::text) || md5('x' || d), '', 'ready', ${PER_DOC}, now()
         FROM generate_series(1, ${nDocs}) d;`,
  );
  sql(
    s.pg,
    `CREATE TEMP TABLE docs AS SELECT id, row_number() OVER (ORDER BY id) AS n FROM documents WHERE knowledge_base_id = ${kb.id};
     INSERT INTO chunks (document_id, knowledge_base_id, chunk_index, text, start_offset, end_offset, section)
       SELECT d.id, ${kb.id}, c, t.text, c * 700, c * 700 + length(t.text), CASE WHEN c % 10 = 0 THEN NULL ELSE 'Part ' || (c / 10) END
         FROM docs d, generate_series(0, ${PER_DOC - 1}) c,
              LATERAL (SELECT string_agg(bs.t, ' ') AS text
                         FROM generate_series(1, 7) j
                         JOIN bench_sentences bs ON bs.id = 1 + ((d.n * 7919 + c * 104729 + j * 31337) % 20000)) t
        WHERE (d.n - 1) * ${PER_DOC} + c < ${N_CHUNKS};
     ANALYZE chunks; ANALYZE documents;`,
  );
  const nChunks = Number(sql(s.pg, 'SELECT count(*) FROM chunks'));
  const avgLen = Number(sql(s.pg, 'SELECT avg(length(text))::int FROM chunks'));
  console.log(`bench search: ${nChunks} chunks (avg ${avgLen} chars) in ${nDocs} documents, loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${os.cpus().length} CPUs`);

  // varied queries: 2-6 words, common and rare, some as questions
  const queries = [];
  for (let i = 0; i < N_QUERIES; i++) {
    const n = 2 + Math.floor(rnd() * 5);
    const w = Array.from({ length: n }, () => (rnd() < 0.7 ? pick(BASE) : pick(rare)));
    const form = rnd();
    queries.push(form < 0.3 ? `how do I ${w.join(' ')}?` : form < 0.4 ? `what is the ${w.join(' ')}` : w.join(' '));
  }

  // ---- through the api, one keep-alive connection, sequential
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const ask = (q) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ query: q, knowledge_base_ids: [kb.id], mode: 'keyword', limit: 10 });
      const t = performance.now();
      const req = http.request(
        `${s.api.url}/api/v1/search`,
        { method: 'POST', agent, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } },
        (res) => {
          const parts = [];
          res.on('data', (c) => parts.push(c));
          res.on('end', () => {
            const ms = performance.now() - t;
            if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode} ${Buffer.concat(parts)}`));
            const j = JSON.parse(Buffer.concat(parts));
            resolve({ ms, took: j.took_ms, n: j.results.length });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  for (const q of queries.slice(0, 50)) await ask(q); // warm-up
  const api = [];
  let empty = 0;
  for (const q of queries) {
    const r = await ask(q);
    api.push(r.ms);
    if (!r.n) empty++;
  }

  // ---- the same SQL through psql: prepared once, executed per query, \timing per statement
  const TSQUERY = `(SELECT p AS qa, CASE WHEN numnode(p) = 0 THEN p ELSE replace(p::text, '&', '|')::tsquery END AS q FROM plainto_tsquery('english', $1) p) q `;
  const OPTS = 'StartSel=\x02, StopSel=\x03, MaxWords=40, MinWords=15, MaxFragments=2, FragmentDelimiter=" ... "';
  const CAP = 1000;
  // The api's two statements (src/search.c: keyword_keys, then fetch_rows for the hits
  // kept) as one: the same ranking and the same headlines.
  const KEYWORD_SQL =
    `WITH m AS ((SELECT c.document_id, c.chunk_index FROM chunks c, ${TSQUERY}` +
    `WHERE c.knowledge_base_id = ANY($2::bigint[]) AND c.tsv @@ q.qa LIMIT ${CAP}) UNION ` +
    `(SELECT c.document_id, c.chunk_index FROM chunks c, ${TSQUERY}` +
    `WHERE c.knowledge_base_id = ANY($2::bigint[]) AND c.tsv @@ q.q LIMIT ${CAP})), ` +
    `top AS (SELECT c.document_id, c.chunk_index, ts_rank(c.tsv, q.q) AS rank ` +
    `FROM m JOIN chunks c USING (document_id, chunk_index), ${TSQUERY}` +
    `ORDER BY rank DESC, c.document_id, c.chunk_index LIMIT $4) ` +
    `SELECT c.document_id, c.knowledge_base_id, c.chunk_index, d.title, c.section, c.start_offset, c.end_offset, top.rank, ` +
    `ts_headline('english', c.text, q.q, $3) FROM top JOIN chunks c USING (document_id, chunk_index) ` +
    `JOIN documents d ON d.id = c.document_id, ${TSQUERY}ORDER BY top.rank DESC, c.document_id, c.chunk_index`;
  const lit = (x) => `'${String(x).replace(/'/g, "''")}'`;
  const script = [
    // the api runs unnamed statements (a plan per query): no generic plan here either
    'SET plan_cache_mode = force_custom_plan;',
    `PREPARE kw(text, text, text, bigint) AS ${KEYWORD_SQL};`,
    ...queries.slice(0, 50).map((q) => `EXECUTE kw(${lit(q)}, '{${kb.id}}', ${lit(OPTS)}, '10');`),
    '\\timing on',
    ...queries.map((q) => `EXECUTE kw(${lit(q)}, '{${kb.id}}', ${lit(OPTS)}, '10');`),
  ].join('\n');
  const file = path.join(s.pg.dir, 'bench-queries.sql');
  fs.writeFileSync(file, script);
  const out = execFileSync('psql', [s.pg.url, '-X', '-q', '-o', '/dev/null', '-f', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const psqlMs = [...out.matchAll(/^Time: ([\d.]+) ms/gm)].map((m) => Number(m[1]));
  if (psqlMs.length !== queries.length) throw new Error(`psql timed ${psqlMs.length} of ${queries.length} statements:\n${out.slice(0, 500)}`);

  const stats = (a) => {
    const x = [...a].sort((p, q) => p - q);
    const at = (p) => x[Math.min(x.length - 1, Math.ceil((p / 100) * x.length) - 1)];
    return { p50: at(50), p99: at(99), mean: x.reduce((n, v) => n + v, 0) / x.length, max: x[x.length - 1] };
  };
  results.api = stats(api);
  results.psql = stats(psqlMs);
  results.ratio = { p50: results.api.p50 / results.psql.p50, p99: results.api.p99 / results.psql.p99 };
  results.chunks = nChunks;
  results.queries = queries.length;
  results.queries_without_results = empty;
  const f = (x) => x.toFixed(2).padStart(7);
  console.log(`keyword search, ${queries.length} queries, limit 10 (keyword mode ranks limit candidates), sequential:`);
  console.log(`            p50 ms   p99 ms  mean ms   max ms`);
  console.log(`api        ${f(results.api.p50)}  ${f(results.api.p99)}  ${f(results.api.mean)}  ${f(results.api.max)}`);
  console.log(`psql (SQL) ${f(results.psql.p50)}  ${f(results.psql.p99)}  ${f(results.psql.mean)}  ${f(results.psql.max)}`);
  console.log(`ratio api/psql: p50 ${results.ratio.p50.toFixed(2)}, p99 ${results.ratio.p99.toFixed(2)}; ${empty} queries without results`);
  console.log(`target keyword p99 <= 50 ms: ${results.api.p99.toFixed(1)} ms -> ${results.api.p99 <= 50 ? 'met' : 'NOT met'}`);
} finally {
  await s.stop();
}
const cmd = `ALMANAC_BIN=${process.env.ALMANAC_BIN} BENCH_CHUNKS=${N_CHUNKS} BENCH_QUERIES=${N_QUERIES} bench/search.sh`;
console.log(`reproduce: ${cmd}`);
fs.writeFileSync(path.join(process.env.BENCH_OUT || '/tmp', 'search-latest.json'), JSON.stringify({ cpus: os.cpus().length, command: cmd, ...results }, null, 2) + '\n');
process.exit(0);
EOF
