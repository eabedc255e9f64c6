#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Streaming answers under load: time to first byte and the api's overhead per answer
# beyond the model's own latency, with BENCH_CONCURRENCY (default 50) answers at once.
#
# Starts PostgreSQL, Redis, the Qdrant stand-in, the api and a worker (tests/lib/stack.mjs),
# uploads the retrieval evaluation corpus, and uses the chat completions stand-in
# (tests/lib/fakechat.mjs) as the model, streaming its answer in pieces every
# BENCH_CHUNK_MS (default 20) ms. Then, for BENCH_ROUNDS rounds (default 4):
#   - baseline: BENCH_CONCURRENCY streamed chat requests straight to the stand-in, each
#     with a prompt the api really sent for that question: the model's own latency;
#   - BENCH_CONCURRENCY streamed POST /api/v1/answers of the same questions at once.
# Reports, per side: time to first byte, time to the first text, time to the last byte
# (p50 / p99 / mean), and the api's overhead per answer = its mean total minus the
# stand-in's for the same questions (search, prompt, grounding, storing the turn, the
# event stream). Writes ${BENCH_OUT:-/tmp}/answers-latest.json.
#
# Environment: ALMANAC_BIN (default build/almanac), BENCH_CONCURRENCY, BENCH_ROUNDS,
# BENCH_CHUNK_MS, BENCH_OUT.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
bench_require_binary "$root"
bench_require_tools node psql redis-server
[ -d "$root/tests/node_modules" ] || npm --prefix "$root/tests" ci --no-audit --no-fund --loglevel=error
export BENCH_ROOT=$root
exec node --input-type=module - <<'EOF'
import fs from 'node:fs';
import path from 'node:path';

const root = process.env.BENCH_ROOT;
const { startStack } = await import(path.join(root, 'tests/lib/stack.mjs'));
const { startFakeChat } = await import(path.join(root, 'tests/lib/fakechat.mjs'));
const { postStream } = await import(path.join(root, 'tests/lib/sse.mjs'));

const C = Number(process.env.BENCH_CONCURRENCY || 50);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 4);
const CHUNK_MS = Number(process.env.BENCH_CHUNK_MS || 20);
const EVAL = path.join(root, 'tests', 'eval');
const TYPES = { '.md': 'text/markdown', '.txt': 'text/plain', '.html': 'text/html' };

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, p50: q(0.5), p99: q(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
};
const fmt = (st) => `p50 ${st.p50.toFixed(1)} ms, p99 ${st.p99.toFixed(1)} ms, mean ${st.mean.toFixed(1)} ms`;

const chat = await startFakeChat();
chat.setMode('ok', { ms: CHUNK_MS });
const s = await startStack({
  env: { ALMANAC_LOG_LEVEL: 'warn' },
  apiEnv: { ALMANAC_LLM_URL: chat.url, ALMANAC_ANSWER_RATE_LIMIT: '100000', ALMANAC_DB_POOL_SIZE: '16', ALMANAC_HTTP_MAX_CONNECTIONS: '1024' },
});
try {
  const spec = JSON.parse(fs.readFileSync(path.join(EVAL, 'questions.json'), 'utf8'));
  const token = await s.c.login('alice@example.org');
  const kb = await s.c.createKb(token, 'bench corpus');
  const ids = [];
  for (const d of spec.documents) {
    const r = await s.c.upload(token, kb.id, d.file, fs.readFileSync(path.join(EVAL, 'corpus', d.file)), { type: TYPES[path.extname(d.file)], title: d.title });
    ids.push(r.json.id);
  }
  await s.c.waitReady(token, ids, { timeoutMs: 300000 });
  const questions = spec.questions.map((q) => q.q);
  // The prompt the api sends for each question, for the baseline.
  const prompts = new Map();
  for (const q of questions) {
    const before = chat.requests.length;
    const r = await postStream(`${s.api.url}/api/v1/answers`, { question: q, stream: true }, { token });
    if (r.status !== 200) throw new Error(`warm-up: HTTP ${r.status}`);
    if (chat.requests.length > before) prompts.set(q, chat.requests.at(-1).body);
  }
  const asked = questions.filter((q) => prompts.has(q));
  const pick = (round, i) => asked[(round * C + i) % asked.length];
  const side = { standin: { ttfb: [], first: [], total: [] }, api: { ttfb: [], first: [], total: [] } };
  let failures = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const direct = await Promise.all(
      Array.from({ length: C }, (_, i) => postStream(`${chat.url}/chat/completions`, prompts.get(pick(round, i)))),
    );
    for (const r of direct) {
      side.standin.ttfb.push(r.firstByteMs);
      side.standin.first.push(r.events.find((e) => e.data && e.data.choices && e.data.choices[0] && e.data.choices[0].delta.content)?.ms ?? r.ms);
      side.standin.total.push(r.ms);
    }
    const viaApi = await Promise.all(
      Array.from({ length: C }, (_, i) => postStream(`${s.api.url}/api/v1/answers`, { question: pick(round, i), stream: true }, { token })),
    );
    for (const r of viaApi) {
      const done = r.events.at(-1);
      if (r.status !== 200 || !done || done.event !== 'done' || done.data.answer_unavailable) failures++;
      side.api.ttfb.push(r.firstByteMs);
      side.api.first.push(r.events.find((e) => e.event === 'delta')?.ms ?? r.ms);
      side.api.total.push(r.ms);
    }
  }
  const report = { concurrency: C, rounds: ROUNDS, chunk_ms: CHUNK_MS, failures, standin: {}, api: {} };
  for (const k of ['standin', 'api']) for (const m of ['ttfb', 'first', 'total']) report[k][m] = stats(side[k][m]);
  report.overhead_ms = report.api.total.mean - report.standin.total.mean;
  report.first_text_overhead_ms = report.api.first.mean - report.standin.first.mean;
  console.log(`answers under ${C} concurrent streams, ${ROUNDS} rounds, the stand-in writing a piece every ${CHUNK_MS} ms`);
  for (const [k, label] of [['standin', 'stand-in alone'], ['api', 'through the api']]) {
    console.log(`${label}:`);
    console.log(`  first byte  ${fmt(report[k].ttfb)}`);
    console.log(`  first text  ${fmt(report[k].first)}`);
    console.log(`  last byte   ${fmt(report[k].total)}`);
  }
  console.log(`api overhead per answer: ${report.overhead_ms.toFixed(1)} ms (mean total beyond the stand-in's), ${report.first_text_overhead_ms.toFixed(1)} ms to the first text; failures ${failures}`);
  const out = path.join(process.env.BENCH_OUT || '/tmp', 'answers-latest.json');
  fs.writeFileSync(out, JSON.stringify(report, null, 2));
  console.log(`wrote ${out}`);
  if (failures) process.exitCode = 1;
} finally {
  await s.stop();
  await chat.close();
}
EOF
