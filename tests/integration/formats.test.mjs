/* SPDX-License-Identifier: Apache-2.0 */
// Document formats end to end: files made at test time by real producers (ghostscript,
// qpdf, npm's docx, pptxgenjs and exceljs) uploaded through the api, extracted by the
// worker in its sandbox (poppler, libzip + libxml2, Tesseract), searched, cited by page,
// slide or sheet; bad files fail their document with a clear error, and the worker's
// memory stays flat across them.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { waitFor } from '../lib/almanac.mjs';
import { startStack } from '../lib/stack.mjs';
import { makeDocx, makePptx, makeXlsx, makePdf, makeScan, encryptPdf, makeZipBomb, makeZip, makePandoc, makeOds, makeOdp, makeTitledSlides, zipEntryText } from '../lib/docmakers.mjs';

const TIMEOUT_MS = 180000;
const DOCX = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';

function rssKb(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(m[1]);
}

/** Waits for a document to end (ready or failed) and returns it. */
async function settled(c, token, id) {
  let doc;
  await waitFor(
    async () => {
      doc = await c.document(token, id);
      return doc.status === 'ready' || doc.status === 'failed';
    },
    { timeoutMs: TIMEOUT_MS, intervalMs: 100, what: `document ${id} settled` },
  );
  return doc;
}

async function search(c, token, kb, query) {
  const r = await c.search(token, { query, knowledge_base_ids: [kb], mode: 'keyword' });
  assert.equal(r.status, 200, r.body);
  return r.json.results;
}

describe('document formats', () => {
  let s, c, tok, kb, tmp, pid;
  const docs = {};

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'almanac-formats-'));
    s = await startStack({ qdrant: false, env: { ALMANAC_CHUNK_SIZE: '300', ALMANAC_CHUNK_OVERLAP: '50' } });
    c = s.c;
    tok = await c.login('alice@example.org');
    kb = (await c.createKb(tok, 'formats')).id;
    pid = s.worker.pid;
  });
  after(async () => {
    await s?.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const upload = async (name, data, type = 'application/octet-stream') => {
    const r = await c.upload(tok, kb, name, data, { type });
    assert.equal(r.status, 202, r.body);
    return r.json;
  };

  test('PDF, DOCX, PPTX and XLSX are extracted, titled, searchable and cited by location', async () => {
    const pdf = makePdf(
      [['Harbour rules apply to every visitor.'], ['The lighthouse keeper rings the fog bell at dusk.'], ['Anchors are checked weekly.']],
      { title: 'Harbour Rules' },
    );
    const docx = await makeDocx([['# Ferry budget', 'The ferry budget grows every spring.'], ['Page two covers the quarantined parrots.']], { title: 'Ferry Memo' });
    const pptx = await makePptx([{ title: 'Welcome', body: 'Opening remarks about the harbour.' }, { title: 'Tides', body: 'Tide tables arrive on Mondays with the mackerel.' }], { title: 'Tide Talk' });
    const xlsx = await makeXlsx({ Budget: [['Item', 'Cost'], ['Ferry', 1200]], Staff: [['Name', 'Role'], ['Ada', 'Navigator']] });
    docs.pdf = await upload('rules.pdf', pdf, 'application/pdf');
    docs.docx = await upload('memo.docx', docx); // type from the bytes and name
    docs.pptx = await upload('talk.pptx', pptx);
    docs.xlsx = await upload('book.xlsx', xlsx);
    assert.equal(docs.pdf.media_type, 'application/pdf');
    assert.equal(docs.docx.media_type, DOCX);
    const ready = await c.waitReady(tok, [docs.pdf.id, docs.docx.id, docs.pptx.id, docs.xlsx.id], { timeoutMs: TIMEOUT_MS });
    assert.equal(ready.get(docs.pdf.id).title, 'Harbour Rules', 'title from PDF metadata');
    assert.equal(ready.get(docs.docx.id).title, 'Ferry Memo', 'title from DOCX core properties');
    assert.equal(ready.get(docs.xlsx.id).title, 'book', 'a workbook without a title keeps its file name');

    const cases = [
      ['lighthouse fog bell', docs.pdf.id, { kind: 'page', number: 2 }],
      ['quarantined parrots', docs.docx.id, { kind: 'page', number: 2 }],
      ['mackerel', docs.pptx.id, { kind: 'slide', number: 2 }],
      ['Navigator', docs.xlsx.id, { kind: 'sheet', number: 2 }],
    ];
    for (const [q, id, loc] of cases) {
      const hits = (await search(c, tok, kb, q)).filter((h) => h.document_id === id);
      assert.ok(hits.length > 0, `"${q}" finds document ${id}`);
      assert.deepEqual(hits[0].location, loc, q);
    }
    const sheet = (await search(c, tok, kb, 'Navigator'))[0];
    assert.equal(sheet.section, 'Staff', 'sheet name as section');
    const content = await c.call('GET', `/api/v1/documents/${docs.xlsx.id}/content`, { token: tok });
    assert.match(content.json.text, /Ada \| Navigator/, 'rows as text, cells apart');

    // the original comes back byte for byte
    const f = await c.call('GET', `/api/v1/documents/${docs.pdf.id}/file`, { token: tok });
    assert.equal(f.status, 200);
    assert.equal(f.headers['content-type'], 'application/pdf');
    assert.equal(Buffer.compare(f.raw, pdf), 0, 'the original file, byte for byte');
    const other = await c.call('GET', `/api/v1/documents/999999/file`, { token: tok });
    assert.equal(other.status, 404);
  });

  test('ODT, ODS, ODP and EPUB are extracted, with sheets, slides and chapters', async () => {
    const md = '# Lantern room\n\nThe lantern room holds the great lens.\n\n# Clockwork\n\nThe keeper winds the clockwork every four hours.\n';
    const odt = await upload('notes.odt', makePandoc(md, 'odt', { title: 'Keeper Notes' }));
    const epub = await upload('log.epub', makePandoc(md, 'epub', { title: 'Keeper Log' }));
    const ods = await upload('stores.ods', makeOds({ Oil: [['Barrels', 12]], Wicks: [['Boxes', 'seventeen cormorants']] }));
    const odp = await upload('briefing.odp', await makeOdp([{ title: 'Start', body: 'Morning briefing.' }, { title: 'Weather', body: 'Gale warnings for the herring fleet.' }]));
    assert.equal(odt.media_type, 'application/vnd.oasis.opendocument.text');
    assert.equal(epub.media_type, 'application/epub+zip');
    assert.equal(ods.media_type, 'application/vnd.oasis.opendocument.spreadsheet');
    assert.equal(odp.media_type, 'application/vnd.oasis.opendocument.presentation');
    const ready = await c.waitReady(tok, [odt.id, epub.id, ods.id, odp.id], { timeoutMs: TIMEOUT_MS });
    assert.equal(ready.get(odt.id).title, 'Keeper Notes');
    assert.equal(ready.get(epub.id).title, 'Keeper Log');
    const find = async (q, id) => (await search(c, tok, kb, q)).find((h) => h.document_id === id);
    const chapter = await find('clockwork', epub.id);
    assert.equal(chapter.section, 'Clockwork', 'a chapter heading is a section');
    assert.equal(chapter.location.kind, 'chapter');
    const odtHit = await find('clockwork', odt.id);
    assert.equal(odtHit.section, 'Clockwork');
    assert.deepEqual((await find('cormorants', ods.id)).location, { kind: 'sheet', number: 2 });
    assert.equal((await find('cormorants', ods.id)).section, 'Wicks');
    assert.deepEqual((await find('herring', odp.id)).location, { kind: 'slide', number: 2 });
  });

  test('slide titles of PPTX and ODP (title placeholders) are sections', async () => {
    const made = makeTitledSlides([
      { title: 'Welcome aboard', body: 'Opening remarks about the quay.' },
      { title: 'Lighthouse duty', body: 'Keepers trim the wick at dusk.' },
    ]);
    // the producers wrote real title placeholders (not text boxes): those are under test
    assert.match(zipEntryText(made.pandocPptx, 'ppt/slides/slide2.xml'), /<p:ph type="title"\s*\/>/);
    assert.match(zipEntryText(made.libreofficePptx, 'ppt/slides/slide2.xml'), /<p:ph type="title"\s*\/>/);
    assert.match(zipEntryText(made.odp, 'content.xml'), /presentation:class="title"/);
    const find = async (q, id) => (await search(c, tok, kb, q)).find((h) => h.document_id === id);
    const up = {
      pandocPptx: await upload('duty.pptx', made.pandocPptx),
      odp: await upload('duty.odp', made.odp),
      libreofficePptx: await upload('duty-lo.pptx', made.libreofficePptx),
    };
    await c.waitReady(tok, Object.values(up).map((d) => d.id), { timeoutMs: TIMEOUT_MS });
    for (const [kind, doc] of Object.entries(up)) {
      const hit = await find('wick', doc.id);
      assert.equal(hit.section, 'Lighthouse duty', `${kind}: the slide title is the section`);
      assert.deepEqual(hit.location, { kind: 'slide', number: 2 }, kind);
      assert.equal((await find('quay', doc.id)).section, 'Welcome aboard', kind);
    }
  });

  test('Markdown front matter is metadata and HTML finds its charset', async () => {
    const md = await upload('README.md', '---\ntitle: "Pilot handbook"\ntags: [boats]\n---\n# Intro\n\nPilots board from the starboard side.\n', 'text/markdown');
    const latin = Buffer.from('<html><head><title>x</title></head><body><p>Le caf\xe9 du port ouvre t\xf4t.</p></body></html>', 'latin1');
    const html = await upload('port.html', latin, 'text/html');
    const meta = await upload('meta.html', Buffer.from('<meta charset="iso-8859-1"><h1>R\xe8gles</h1><p>Quai num\xe9ro deux.</p>', 'latin1'), 'text/html');
    // YAML that libyaml refuses (an unclosed flow sequence) is not front matter: body text
    const broken = await upload('BROKEN.md', '---\ntitle: [Tide tables\n---\n# Moorings\n\nBuoys are yellow.\n', 'text/markdown');
    const ready = await c.waitReady(tok, [md.id, html.id, meta.id, broken.id], { timeoutMs: TIMEOUT_MS });
    assert.equal(ready.get(md.id).title, 'Pilot handbook');
    const text = (await c.call('GET', `/api/v1/documents/${md.id}/content`, { token: tok })).json.text;
    assert.doesNotMatch(text, /tags:|title:/, 'front matter is not body text');
    const brokenText = (await c.call('GET', `/api/v1/documents/${broken.id}/content`, { token: tok })).json.text;
    assert.match(brokenText, /title: \[Tide tables[\s\S]*Buoys are yellow\./, 'malformed front matter stays body text');
    assert.notEqual(ready.get(broken.id).title, 'Tide tables', 'its title is not used');
    assert.match((await c.call('GET', `/api/v1/documents/${html.id}/content`, { token: tok })).json.text, /Le café du port ouvre tôt\./);
    assert.equal(ready.get(meta.id).title, 'Règles', 'first heading as title');
  });

  test('bad files fail their document with a clear error; the worker stays flat', async (t) => {
    const before = rssKb(pid);
    const good = makePdf([['A plain page about buoys.']]);
    const bad = [
      ['secret.pdf', encryptPdf(good, tmp), /encrypted PDF/],
      ['cut.pdf', good.subarray(0, Math.floor(good.length / 3)), /PDF could not be read: /],
      ['bomb.docx', makeZipBomb('word/document.xml', 300 << 20), /zip bomb/],
      [
        'lol.docx',
        makeZip([
          { name: '[Content_Types].xml', data: '<?xml version="1.0"?><Types/>' },
          {
            name: 'word/document.xml',
            data: '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><w:document xmlns:w="x"><w:body><w:p><w:r><w:t>&d;&d;&d;&d;</w:t></w:r></w:p></w:body></w:document>',
          },
        ]),
        /entit/,
      ],
      ['scan.pdf', makeScan(['Scanned ferry timetable']).pdf, /no text layer; OCR is off/],
      ['photo.png', makeScan(['Scanned ferry timetable']).png, /OCR is off/],
      ['notzip.docx', Buffer.from('PK\x03\x04 this is not really a zip archive at all', 'latin1'), /not a readable zip|could not be read/],
    ];
    const ids = [];
    for (const [name, data] of bad) ids.push((await upload(name, data)).id);
    for (let i = 0; i < bad.length; i++) {
      const d = await settled(c, tok, ids[i]);
      assert.equal(d.status, 'failed', `${bad[i][0]} fails`);
      assert.match(d.error, bad[i][2], bad[i][0]);
    }
    // a 200-page PDF, each page findable by its number
    const pages = Array.from({ length: 200 }, (_, i) => [`Page marker zebra${i + 1} of the long manual.`]);
    const long = await upload('manual.pdf', makePdf(pages));
    await c.waitReady(tok, [long.id], { timeoutMs: TIMEOUT_MS });
    const hit = (await search(c, tok, kb, 'zebra173'))[0];
    assert.equal(hit.document_id, long.id);
    assert.deepEqual(hit.location, { kind: 'page', number: 173 });
    // the worker is alive and has not grown by what the files would take in-process
    assert.equal((await fetch(`${s.worker.probeUrl}/health`)).status, 200, 'the worker is alive');
    const grown = rssKb(pid) - before;
    t.diagnostic(`worker RSS ${before} kB before, ${before + grown} kB after`);
    assert.ok(grown < 16 * 1024, `worker RSS grew by ${grown} kB across the bad files and the long PDF`);
  });
});

describe('OCR on', () => {
  let s, c, tok, kb;
  before(async () => {
    s = await startStack({ qdrant: false, env: { ALMANAC_OCR: 'true', ALMANAC_OCR_LANGUAGES: 'eng' } });
    c = s.c;
    tok = await c.login('alice@example.org');
    kb = (await c.createKb(tok, 'scans')).id;
  });
  after(async () => {
    await s?.stop();
  });

  test('a scanned page and an image are read by Tesseract, with the page kept', async () => {
    const scan = makeScan(['The harbour master logs every ferry.']);
    const a = await c.upload(tok, kb, 'scan.pdf', scan.pdf, { type: 'application/pdf' });
    const b = await c.upload(tok, kb, 'photo.png', scan.png, { type: 'image/png' });
    assert.equal(a.status, 202, a.body);
    assert.equal(b.status, 202, b.body);
    await c.waitReady(tok, [a.json.id, b.json.id], { timeoutMs: TIMEOUT_MS });
    const r = await c.search(tok, { query: 'harbour master ferry', knowledge_base_ids: [kb], mode: 'keyword' });
    const byDoc = new Map(r.json.results.map((h) => [h.document_id, h]));
    assert.deepEqual(byDoc.get(a.json.id)?.location, { kind: 'page', number: 1 });
    assert.ok(byDoc.has(b.json.id), 'the image is searchable');
  });
});
