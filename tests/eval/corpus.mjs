/* SPDX-License-Identifier: Apache-2.0 */
// The evaluation's documents (questions.json): corpus files, or documents made at run
// time by real producers; and where a passage stands in a document's text.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { makePdfFromText, makeDocxFromText } from '../lib/docmakers.mjs';

const EVAL_DIR = path.dirname(fileURLToPath(import.meta.url));
const CORPUS_TYPES = { '.md': 'text/markdown', '.txt': 'text/plain', '.html': 'text/html' };

/** The bytes and declared type of a document of questions.json: a corpus file, or one made
 * at run time by a real producer (ghostscript for PDF, npm's docx for DOCX) from a text
 * whose form feeds are pages. */
export async function corpusDocument(d) {
  const type = CORPUS_TYPES[path.extname(d.file)] ?? 'application/octet-stream';
  if (!d.make) return { data: fs.readFileSync(path.join(EVAL_DIR, 'corpus', d.file)), type };
  const text = fs.readFileSync(path.join(EVAL_DIR, d.source), 'utf8');
  const data = d.make === 'pdf' ? await makePdfFromText(text, { title: d.title }) : await makeDocxFromText(text, { title: d.title });
  return { data, type };
}

/** Code-point range [start, end) of passage in text, or null; a PDF's line breaks
 * may stand where the passage has spaces. */
export function locate(text, passage) {
  const words = passage.split(/\s+/).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const m = new RegExp(words.join('\\s+')).exec(text);
  if (!m) return null;
  const start = Array.from(text.slice(0, m.index)).length;
  return { start, end: start + Array.from(m[0]).length };
}
