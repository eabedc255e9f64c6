#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Document formats: what the worker's sandboxed extraction costs beside the command-line
# tools alone, measured in the same run on the same files.
#
#   1. PDF pages per second: a BENCH_PDF_PAGES-page text PDF (ghostscript) from upload to
#      ready (PostgreSQL's created_at / processed_at: extraction in the sandbox, chunking,
#      indexing), against pdfinfo + pdftotext alone on the same file.
#   2. The worker's peak RSS (VmHWM) across a ~50 MB PDF (text pages plus uncompressed
#      page images, made with ghostscript and qpdf), against its peak before and against
#      pdftotext's own peak RSS on that file.
#   3. Time to ready of a BENCH_DOCX_PAGES-page DOCX (npm's docx), against
#      `almanac extract` alone on the same file.
#
# Environment: ALMANAC_BIN (default build/almanac), BENCH_PDF_PAGES (300),
# BENCH_DOCX_PAGES (100), BENCH_BIG_MB (50), BENCH_OUT (directory of formats-latest.json,
# default /tmp). No Qdrant (keyword only): the figures are the extraction's, not the
# embedder's.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
bench_require_binary "$root"
bench_require_tools node psql redis-server gs qpdf pdftotext pdfinfo python3
export BENCH_ROOT=$root
exec node --input-type=module - <<'EOF'
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

const root = process.env.BENCH_ROOT;
const { startStack } = await import(path.join(root, 'tests/lib/stack.mjs'));
const { sql } = await import(path.join(root, 'tests/lib/psql.mjs'));
const { makePdf, makeDocx } = await import(path.join(root, 'tests/lib/docmakers.mjs'));
const PDF_PAGES = Number(process.env.BENCH_PDF_PAGES || 300);
const DOCX_PAGES = Number(process.env.BENCH_DOCX_PAGES || 100);
const BIG_MB = Number(process.env.BENCH_BIG_MB || 50);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'almanac-bench-formats-'));
const DOCX = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';

const WORDS = 'harbour ferry tide lantern keeper anchor buoy pilot cargo crane dock quay vessel rope chart compass gale mackerel herring gull'.split(' ');
let seed = 7;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const line = () => Array.from({ length: 12 }, () => WORDS[Math.floor(rnd() * WORDS.length)]).join(' ') + '.';
const page = (n) => Array.from({ length: n }, line);

/** Seconds and peak RSS (KiB) of a command reading input (a regular file, as the
 * sandbox's memfd is: the tools seek), output discarded; python's rusage of children. */
function measure(cmd, args, input) {
  const file = path.join(tmp, 'input.bin');
  fs.writeFileSync(file, input);
  const py =
    'import resource,subprocess,sys,time\n' +
    't=time.monotonic()\n' +
    'subprocess.run(sys.argv[2:],stdin=open(sys.argv[1],"rb"),stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL,check=True)\n' +
    'print(time.monotonic()-t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)';
  const out = execFileSync('python3', ['-c', py, file, cmd, ...args]).toString().trim().split(' ');
  return { s: Number(out[0]), rssKb: Number(out[1]) };
}

function hwmKb(pid) {
  return Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)[1]);
}

async function readySeconds(s, c, tok, kb, name, data, type) {
  const r = await c.upload(tok, kb, name, data, { type });
  if (r.status !== 202) throw new Error(`upload ${name}: ${r.status} ${r.body}`);
  const d = (await c.waitReady(tok, [r.json.id], { timeoutMs: 900000 })).get(r.json.id);
  const secs = Number(sql(s.pg, `SELECT extract(epoch FROM processed_at - created_at) FROM documents WHERE id = ${r.json.id}`));
  return { secs, chunks: d.chunk_count };
}

const report = { machine: `${os.cpus().length} cores`, command: 'bench/formats.sh' };
const big = String(BIG_MB * 2 << 20);
const s = await startStack({
  qdrant: false,
  env: { ALMANAC_LOG_LEVEL: 'warn', ALMANAC_MAX_UPLOAD_BYTES: big, ALMANAC_MAX_UPLOAD_BYTES_PDF: big, ALMANAC_WORKER_CONCURRENCY: '1' },
});
try {
  const c = s.c;
  const tok = await c.login('alice@example.org');
  const kb = (await c.createKb(tok, 'bench')).id;

  // 1. PDF pages per second
  const pdf = makePdf(Array.from({ length: PDF_PAGES }, () => page(40)));
  fs.writeFileSync(path.join(tmp, 'text.pdf'), pdf);
  const info = measure('pdfinfo', ['fd://0'], pdf);
  const text = measure('pdftotext', ['-enc', 'UTF-8', 'fd://0', '-'], pdf);
  const e2e = await readySeconds(s, c, tok, kb, 'text.pdf', pdf, 'application/pdf');
  const toolS = info.s + text.s;
  report.pdf = {
    pages: PDF_PAGES, bytes: pdf.length,
    worker_pages_per_s: +(PDF_PAGES / e2e.secs).toFixed(1),
    tools_pages_per_s: +(PDF_PAGES / toolS).toFixed(1),
    ratio: +(toolS / e2e.secs).toFixed(2),
    worker_s: +e2e.secs.toFixed(3), tools_s: +toolS.toFixed(3), chunks: e2e.chunks,
  };

  // 2. the worker's peak RSS on a big PDF
  const textPart = makePdf(Array.from({ length: 200 }, () => page(40)));
  fs.writeFileSync(path.join(tmp, 'part-text.pdf'), textPart);
  const imgPs = ['%!PS', '/Helvetica findfont 14 scalefont setfont'];
  const imgPages = Math.ceil((BIG_MB << 20) / (1240 * 1754));
  for (let i = 0; i < imgPages; i++) imgPs.push(...page(30).map((l, j) => `40 ${780 - j * 24} moveto (${l}) show`), 'showpage');
  execFileSync('gs', ['-q', '-dNOPAUSE', '-dBATCH', '-dSAFER', '-sDEVICE=pdfimage8', '-r150', `-sOutputFile=${path.join(tmp, 'part-img.pdf')}`, '-'], { input: imgPs.join('\n') });
  execFileSync('qpdf', ['--empty', '--pages', path.join(tmp, 'part-text.pdf'), path.join(tmp, 'part-img.pdf'), '--', '--stream-data=uncompress', path.join(tmp, 'big.pdf')]);
  const bigPdf = fs.readFileSync(path.join(tmp, 'big.pdf'));
  const before = hwmKb(s.worker.pid);
  const tool = measure('pdftotext', ['-enc', 'UTF-8', 'fd://0', '-'], bigPdf);
  const bigE2e = await readySeconds(s, c, tok, kb, 'big.pdf', bigPdf, 'application/pdf');
  const after = hwmKb(s.worker.pid);
  report.big_pdf = {
    mb: +(bigPdf.length / 1048576).toFixed(1), pages: 200 + imgPages,
    worker_peak_rss_before_mb: +(before / 1024).toFixed(1), worker_peak_rss_after_mb: +(after / 1024).toFixed(1),
    pdftotext_peak_rss_mb: +(tool.rssKb / 1024).toFixed(1),
    worker_s: +bigE2e.secs.toFixed(2), pdftotext_s: +tool.s.toFixed(2),
  };

  // 3. a long DOCX
  const docx = await makeDocx(Array.from({ length: DOCX_PAGES }, (_, i) => [`# Chapter ${i + 1}`, ...page(25)]));
  const cli = measure(process.env.ALMANAC_BIN, ['extract', '--type', DOCX], docx);
  const docE2e = await readySeconds(s, c, tok, kb, 'long.docx', docx, DOCX);
  report.docx = {
    pages: DOCX_PAGES, bytes: docx.length, ready_s: +docE2e.secs.toFixed(3),
    almanac_extract_alone_s: +cli.s.toFixed(3), ratio: +(cli.s / docE2e.secs).toFixed(2), chunks: docE2e.chunks,
  };
} finally {
  await s.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
}
const out = path.join(process.env.BENCH_OUT || '/tmp', 'formats-latest.json');
fs.writeFileSync(out, JSON.stringify(report, null, 2));
console.log(JSON.stringify(report, null, 2));
console.log(`written: ${out}`);
EOF
