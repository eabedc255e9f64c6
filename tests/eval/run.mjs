#!/usr/bin/env node
/* SPDX-License-Identifier: Apache-2.0 */
// Retrieval evaluation of Almanac's search.
//
// Starts PostgreSQL, Redis, the Qdrant stand-in, `almanac api` and `almanac worker` (with
// the built-in hashing embedder), uploads the corpus in tests/eval/corpus/, waits until
// every document is ready, then asks every question of questions.json in each mode
// (keyword, vector, hybrid) with limit 5.
//
// A result is a hit when it comes from the question's document and its chunk (the slice
// [start, end) of documents.text, in code points) contains the answer passage, or covers
// at least half of it (a passage cut by a chunk boundary). Per mode: recall@5 (questions
// with a hit in the top 5) and MRR (mean of 1/rank of the first hit, 0 without one).
//
// Prints a table and writes ${EVAL_OUT:-/tmp}/eval-latest.json. Exits 1 when hybrid is
// worse than the better of keyword and vector on recall@5 or MRR (the project's bar),
// 2 when the evaluation itself cannot run.
//
//   ALMANAC_BIN=$PWD/build/almanac node tests/eval/run.mjs [--verbose]

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startStack } from '../lib/stack.mjs';
import { cpSlice } from '../lib/apiclient.mjs';
import { sql } from '../lib/psql.mjs';
import { corpusDocument, locate } from './corpus.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MODES = ['keyword', 'vector', 'hybrid'];
const K = 5;
const verbose = process.argv.includes('--verbose');



function isHit(result, want, texts) {
  if (result.document_id !== want.documentId) return false;
  const chunk = cpSlice(texts.get(result.document_id), result.start, result.end);
  if (chunk.includes(want.passage)) return true;
  const overlap = Math.min(result.end, want.range.end) - Math.max(result.start, want.range.start);
  return overlap * 2 >= want.range.end - want.range.start;
}

async function main() {
  const spec = JSON.parse(fs.readFileSync(path.join(HERE, 'questions.json'), 'utf8'));
  const t0 = performance.now();
  const s = await startStack({ env: { ALMANAC_LOG_LEVEL: 'warn' } });
  try {
    const c = s.c;
    const token = await c.login('alice@example.org');
    const kb = await c.createKb(token, 'evaluation corpus');
    const byTitle = new Map();
    const ids = [];
    for (const d of spec.documents) {
      const { data, type } = await corpusDocument(d);
      const r = await c.upload(token, kb.id, d.file, data, { type, title: d.title });
      if (r.status !== 202) throw new Error(`upload ${d.file}: HTTP ${r.status} ${r.body}`);
      byTitle.set(d.title, r.json.id);
      ids.push(r.json.id);
    }
    const ready = await c.waitReady(token, ids, { timeoutMs: 300000 });
    const chunks = [...ready.values()].reduce((n, d) => n + d.chunk_count, 0);
    const ingestMs = performance.now() - t0;

    const texts = new Map();
    for (const id of ids) texts.set(id, sql(s.pg, `SELECT text FROM documents WHERE id = ${id}`));
    const questions = spec.questions.map((q, i) => {
      const documentId = byTitle.get(q.title);
      if (!documentId) throw new Error(`question ${i}: no document titled ${q.title}`);
      const range = locate(texts.get(documentId), q.passage);
      if (!range) throw new Error(`question ${i}: passage not in the extracted text of ${q.title}: ${q.passage}`);
      return { ...q, documentId, range };
    });

    const report = { k: K, documents: ids.length, chunks, questions: questions.length, modes: {}, misses: {} };
    for (const mode of MODES) {
      let found = 0;
      let rr = 0;
      let degraded = 0;
      let located = 0;
      let withLocation = 0;
      const lat = [];
      report.misses[mode] = [];
      for (const q of questions) {
        const r = await c.search(token, { query: q.q, knowledge_base_ids: [kb.id], limit: K, mode });
        if (r.status !== 200) throw new Error(`search (${mode}) ${q.q}: HTTP ${r.status} ${r.body}`);
        if (r.json.degraded) degraded++;
        lat.push(r.json.took_ms);
        const rank = r.json.results.findIndex((h) => isHit(h, q, texts)) + 1;
        if (q.location) withLocation++;
        if (rank > 0 && q.location) {
          const got = r.json.results[rank - 1].location;
          if (got && got.kind === q.location.kind && got.number === q.location.number) located++;
          else report.misses[mode].push({ q: q.q, want: `${q.location.kind} ${q.location.number}`, got: [JSON.stringify(got)] });
        }
        if (rank > 0) {
          found++;
          rr += 1 / rank;
        } else {
          report.misses[mode].push({
            q: q.q,
            want: q.title,
            got: r.json.results.map((h) => `${h.title}#${h.chunk_index}`),
          });
        }
        if (verbose) console.log(`${mode.padEnd(7)} ${rank || '-'}  ${q.q}`);
      }
      lat.sort((a, b) => a - b);
      report.modes[mode] = {
        recall_at_5: found / questions.length,
        mrr: rr / questions.length,
        hits: found,
        degraded,
        // of the questions whose answer has a page: hits that name that page
        location_hits: `${located}/${withLocation}`,
        took_ms_p50: lat[Math.floor(lat.length / 2)],
      };
    }
    const { keyword, vector, hybrid } = report.modes;
    const bestRecall = Math.max(keyword.recall_at_5, vector.recall_at_5);
    const bestMrr = Math.max(keyword.mrr, vector.mrr);
    const eps = 1e-9;
    report.bar = {
      rule: 'hybrid >= max(keyword, vector) on recall@5 and on MRR',
      recall_ok: hybrid.recall_at_5 + eps >= bestRecall,
      mrr_ok: hybrid.mrr + eps >= bestMrr,
    };
    // pages are exact: a hit on a question whose answer has a page must name that page
    report.bar.location_ok = MODES.every((m) => report.misses[m].every((x) => !x.want.startsWith('page ')));
    report.pass = report.bar.recall_ok && report.bar.mrr_ok && report.bar.location_ok;
    report.embedder = 'hashing (384 dimensions)';
    report.ingest_ms = Math.round(ingestMs);
    report.command = 'ALMANAC_BIN=$PWD/build/almanac node tests/eval/run.mjs';

    console.log(`\nretrieval evaluation: ${ids.length} documents, ${chunks} chunks, ${questions.length} questions, limit ${K}`);
    console.log('mode      recall@5   MRR     hits  degraded');
    for (const m of MODES) {
      const x = report.modes[m];
      console.log(
        `${m.padEnd(9)} ${x.recall_at_5.toFixed(3).padStart(8)}  ${x.mrr.toFixed(3).padStart(6)}  ${String(x.hits).padStart(4)}/${questions.length}  ${x.degraded}`,
      );
    }
    console.log(
      `bar (hybrid >= best single mode): recall ${report.bar.recall_ok ? 'ok' : 'FAIL'}, MRR ${report.bar.mrr_ok ? 'ok' : 'FAIL'}; ` +
        `pages of PDF and DOCX answers ${report.bar.location_ok ? 'ok' : 'FAIL'} (${MODES.map((m) => `${m} ${report.modes[m].location_hits}`).join(', ')})`,
    );
    if (verbose) {
      for (const m of MODES) for (const x of report.misses[m]) console.log(`miss ${m}: ${x.q} (want ${x.want}; got ${x.got.join(', ')})`);
    }
    const outDir = process.env.EVAL_OUT || '/tmp';
    fs.mkdirSync(outDir, { recursive: true });
    const out = path.join(outDir, 'eval-latest.json');
    fs.writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
    console.log(`written: ${out}`);
    return report.pass ? 0 : 1;
  } finally {
    await s.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`evaluation failed: ${e.stack || e}`);
    process.exit(2);
  },
);
