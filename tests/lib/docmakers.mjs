/* SPDX-License-Identifier: Apache-2.0 */
// Documents made at test time by real producers: npm's docx, pptxgenjs, exceljs and
// SheetJS (ODS), and Debian's ghostscript (PDF), qpdf (encryption), pandoc (ODT, EPUB)
// and LibreOffice (ODP, converted from a PPTX; PPTX from an ODP). Each returns a Buffer.
import { execFileSync } from 'node:child_process';
import { deflateRawSync } from 'node:zlib';
import * as docx from 'docx';
import PptxGenJS from 'pptxgenjs';
import ExcelJS from 'exceljs';
import * as XLSX from 'xlsx';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

/** DOCX: pages is an array of pages, each an array of paragraphs; a string starting
 * with "# " is a Heading 1. Pages are separated by explicit page breaks. */
export async function makeDocx(pages, { title } = {}) {
  const children = [];
  pages.forEach((paras, i) => {
    paras.forEach((p, j) => {
      const heading = p.startsWith('# ');
      children.push(
        new docx.Paragraph({
          heading: heading ? docx.HeadingLevel.HEADING_1 : undefined,
          pageBreakBefore: false,
          children: [
            ...(i > 0 && j === 0 ? [new docx.PageBreak()] : []),
            new docx.TextRun(heading ? p.slice(2) : p),
          ],
        }),
      );
    });
  });
  const doc = new docx.Document({ title, creator: 'almanac tests', sections: [{ children }] });
  return docx.Packer.toBuffer(doc);
}

/** PPTX: one slide per entry {title, body}. */
export async function makePptx(slides, { title } = {}) {
  const pptx = new PptxGenJS();
  if (title) pptx.title = title;
  for (const s of slides) {
    const slide = pptx.addSlide();
    slide.addText(s.title, { placeholder: 'title', x: 0.5, y: 0.3, w: 9, h: 1, fontSize: 28 });
    slide.addText(s.body, { x: 0.5, y: 1.5, w: 9, h: 3, fontSize: 18 });
  }
  return Buffer.from(await pptx.write({ outputType: 'nodebuffer' }));
}

/** XLSX: sheets is {name: rows}, rows arrays of cell values. */
export async function makeXlsx(sheets, { title } = {}) {
  const wb = new ExcelJS.Workbook();
  if (title) wb.title = title;
  for (const [name, rows] of Object.entries(sheets)) {
    const ws = wb.addWorksheet(name);
    for (const r of rows) ws.addRow(r);
  }
  return Buffer.from(await wb.xlsx.writeBuffer());
}

/** Lines of at most width characters, broken at spaces. */
function wrap(line, width = 90) {
  const out = [];
  let cur = '';
  for (const w of line.split(/\s+/).filter(Boolean)) {
    if (cur && cur.length + 1 + w.length > width) {
      out.push(cur);
      cur = w;
    } else cur = cur ? `${cur} ${w}` : w;
  }
  if (cur) out.push(cur);
  return out.length ? out : [''];
}

/** Pages (split at form feeds) of paragraphs (split at blank lines) of a text. */
export function pagesOf(text) {
  return text.split('\f').map((p) =>
    p
      .split(/\n\s*\n/)
      .map((x) => x.replace(/\s+/g, ' ').trim())
      .filter(Boolean),
  );
}

/** A PDF of a text: pages at form feeds, paragraphs wrapped, a blank line between. */
export function makePdfFromText(text, opts) {
  return makePdf(
    pagesOf(text).map((paras) => paras.flatMap((p, i) => [...(i ? [''] : []), ...wrap(p)])),
    opts,
  );
}

/** A DOCX of a text: pages at form feeds, each page's first paragraph a heading. */
export function makeDocxFromText(text, opts) {
  return makeDocx(pagesOf(text).map((paras) => paras.map((p, i) => (i === 0 ? `# ${p}` : p))), opts);
}

function psString(s) {
  return '(' + s.replace(/[\\()]/g, (c) => '\\' + c) + ')';
}

/** PDF through ghostscript: pages is an array of pages, each an array of lines. */
export function makePdf(pages, { title } = {}) {
  const ps = ['%!PS', '/Helvetica findfont 11 scalefont setfont'];
  if (title) ps.push(`[ /Title ${psString(title)} /DOCINFO pdfmark`);
  for (const lines of pages) {
    lines.forEach((l, i) => ps.push(`72 ${760 - i * 14} moveto ${psString(l)} show`));
    ps.push('showpage');
  }
  return execFileSync('gs', ['-q', '-dNOPAUSE', '-dBATCH', '-dSAFER', '-sDEVICE=pdfwrite', '-sOutputFile=-', '-'], {
    input: ps.join('\n'),
    maxBuffer: 1 << 30,
  });
}

/** A page of text as an image only, as a scanner makes it: ghostscript's pdfimage8
 * device rasterises the page into a PDF with no text layer; pnggray gives the PNG. */
export function makeScan(lines) {
  const ps = ['%!PS', '/Helvetica findfont 28 scalefont setfont'];
  lines.forEach((l, i) => ps.push(`72 ${720 - i * 40} moveto ${psString(l)} show`));
  ps.push('showpage');
  const gs = (device) =>
    execFileSync('gs', ['-q', '-dNOPAUSE', '-dBATCH', '-dSAFER', `-sDEVICE=${device}`, '-r200', '-sOutputFile=-', '-'], {
      input: ps.join('\n'),
      maxBuffer: 1 << 28,
    });
  return { pdf: gs('pdfimage8'), png: gs('pnggray') };
}

/** An encrypted copy of pdf (a user password is needed to open it). */
export function encryptPdf(pdf, dir) {
  const src = `${dir}/plain.pdf`;
  const dst = `${dir}/encrypted.pdf`;
  execFileSync('sh', ['-c', 'cat > "$1"', 'sh', src], { input: pdf });
  execFileSync('qpdf', ['--encrypt', 'user-secret', 'owner-secret', '256', '--', src, dst]);
  return execFileSync('cat', [dst], { maxBuffer: 1 << 30 });
}

/** A zip with one entry of size bytes of zeros: a zip bomb in miniature (deflate makes
 * 1000:1 of it), named as the package part a reader opens first. */
export function makeZipBomb(entryName, size) {
  const data = deflateRawSync(Buffer.alloc(size), { level: 9 });
  return zipOf([{ name: entryName, raw: data, size, crc: crcZeros(size) }]);
}

/** A zip of stored (uncompressed) entries {name, data}. */
export function makeZip(entries) {
  return zipOf(entries.map((e) => ({ name: e.name, raw: Buffer.from(e.data), size: Buffer.byteLength(e.data), crc: crc32(Buffer.from(e.data)), stored: true })));
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf, crc = 0xffffffff) {
  for (const b of buf) crc = CRC_TABLE[(crc ^ b) & 0xff] ^ (crc >>> 8);
  return crc;
}

function crcZeros(size) {
  let crc = 0xffffffff;
  const chunk = Buffer.alloc(1 << 20);
  for (let left = size; left > 0; left -= chunk.length) crc = crc32(left >= chunk.length ? chunk : chunk.subarray(0, left), crc);
  return (crc ^ 0xffffffff) >>> 0;
}

function zipOf(entries) {
  const locals = [];
  const centrals = [];
  let offset = 0;
  for (const e of entries) {
    const crc = e.stored ? (e.crc ^ 0xffffffff) >>> 0 : e.crc;
    const name = Buffer.from(e.name);
    const method = e.stored ? 0 : 8;
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(method, 8);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(e.raw.length, 18);
    lh.writeUInt32LE(e.size, 22);
    lh.writeUInt16LE(name.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(method, 10);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(e.raw.length, 20);
    ch.writeUInt32LE(e.size, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(offset, 42);
    locals.push(lh, name, e.raw);
    centrals.push(ch, name);
    offset += 30 + name.length + e.raw.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** Runs a producer in a scratch folder: writes inputs, returns the bytes of output. */
function produce(inputs, output, cmd, args) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'almanac-make-'));
  try {
    for (const [name, data] of Object.entries(inputs)) fs.writeFileSync(path.join(dir, name), data);
    execFileSync(cmd, args, { cwd: dir, env: { ...process.env, HOME: dir }, timeout: 120000, stdio: ['ignore', 'ignore', 'pipe'] });
    return fs.readFileSync(path.join(dir, output));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** ODT or EPUB from Markdown, through pandoc. */
export function makePandoc(markdown, format, { title } = {}) {
  const out = `out.${format}`;
  return produce({ 'in.md': markdown }, out, 'pandoc', ['in.md', '-o', out, ...(title ? ['--metadata', `title=${title}`] : [])]);
}

/** ODS through SheetJS: sheets is {name: rows}. */
export function makeOds(sheets) {
  const wb = XLSX.utils.book_new();
  for (const [name, rows] of Object.entries(sheets)) XLSX.utils.book_append_sheet(wb, XLSX.utils.aoa_to_sheet(rows), name);
  return Buffer.from(XLSX.write(wb, { type: 'buffer', bookType: 'ods' }));
}

/** Slides {title, body} with real title placeholders: pandoc writes a PPTX (each "# "
 * heading a slide whose title is a <p:ph type="title"/> shape), LibreOffice converts it to
 * an ODP (presentation:class="title" frames) and that ODP back to its own PPTX. Returns
 * {pandocPptx, odp, libreofficePptx}. */
export function makeTitledSlides(slides) {
  const md = slides.map((s) => `# ${s.title}\n\n${s.body}\n`).join('\n');
  const pandocPptx = produce({ 'in.md': md }, 'out.pptx', 'pandoc', ['in.md', '-o', 'out.pptx']);
  const odp = produce({ 'in.pptx': pandocPptx }, 'in.odp', 'soffice', ['--headless', '--convert-to', 'odp', 'in.pptx']);
  const libreofficePptx = produce({ 'in.odp': odp }, 'in.pptx', 'soffice', ['--headless', '--convert-to', 'pptx', 'in.odp']);
  return { pandocPptx, odp, libreofficePptx };
}

/** The text of one entry of a zip package (SheetJS's zip reader), undefined when absent. */
export function zipEntryText(buf, name) {
  const { CFB } = createRequire(import.meta.url)('xlsx'); // not among its ES module exports
  const zip = CFB.read(buf, { type: 'buffer' });
  const i = zip.FullPaths.indexOf(`Root Entry/${name}`);
  return i < 0 ? undefined : Buffer.from(zip.FileIndex[i].content).toString('utf8');
}

/** ODP: a PPTX made by pptxgenjs, converted by LibreOffice. */
export async function makeOdp(slides) {
  return produce({ 'in.pptx': await makePptx(slides) }, 'in.odp', 'soffice', ['--headless', '--convert-to', 'odp', 'in.pptx']);
}
