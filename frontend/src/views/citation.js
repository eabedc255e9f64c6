/* SPDX-License-Identifier: Apache-2.0 */
// The citation: a search result's passage shown in place in its document. Offsets
// (start, end) are code points of the document's extracted text, which the content
// endpoint serves as `text`; when an api does not serve it, the stored `content` is used
// (the same text for plain text documents) and the passage is found by its words.
import { call, ApiError } from '../api.js';
import { h, nextId, snippetText } from '../dom.js';

/** Code-point slices [0,start), [start,end), [end,∞) of text. */
export function splitByCodePoints(text, start, end) {
  const cps = Array.from(text);
  const s = Math.max(0, Math.min(start, cps.length));
  const e = Math.max(s, Math.min(end, cps.length));
  return [cps.slice(0, s).join(''), cps.slice(s, e).join(''), cps.slice(e).join('')];
}

/** [before, passage, after] of text for a result, and how it was found. */
export function locatePassage(doc, result) {
  if (typeof doc.text === 'string') {
    return { parts: splitByCodePoints(doc.text, result.start, result.end), how: 'offsets', text: doc.text };
  }
  const content = typeof doc.content === 'string' ? doc.content : '';
  if (doc.media_type === 'text/plain') {
    return { parts: splitByCodePoints(content, result.start, result.end), how: 'offsets', text: content };
  }
  // Markup changes the offsets: look for the snippet's first fragment in the content.
  const fragment = snippetText(result.snippet).split(' ... ')[0].trim();
  const words = fragment.split(/\s+/).filter(Boolean).slice(0, 6);
  for (let n = words.length; n >= 2; n--) {
    const needle = words.slice(0, n).join(' ');
    const at = content.indexOf(needle);
    if (at >= 0) {
      const endAt = Math.min(content.length, at + fragment.length);
      return { parts: [content.slice(0, at), content.slice(at, endAt), content.slice(endAt)], how: 'search', text: content };
    }
  }
  return { parts: [content, '', ''], how: 'none', text: content };
}

/** "page 12", "slide 3", "sheet 2", "chapter 4"; '' when the format has no locations. */
export function locationLabel(result) {
  const loc = result && result.location;
  return loc && loc.kind && loc.number ? `${loc.kind} ${loc.number}` : '';
}

export async function openCitation(result, { kbName = '' } = {}) {
  const opener = document.activeElement;
  const titleId = nextId('citation-title');
  const body = h('div', { class: 'citation-body', tabindex: '0', 'aria-label': 'Document text' }, h('p', { class: 'muted' }, 'Loading the document…'));
  const close = h('button', { type: 'button', class: 'button', 'aria-label': 'Close the citation' }, 'Close');
  const note = h('div', { class: 'citation-note' });
  const dlg = h(
    'dialog',
    { class: 'dialog citation', 'aria-labelledby': titleId },
    h(
      'div',
      { class: 'citation-head' },
      h(
        'div',
        {},
        h('h2', { id: titleId }, result.title),
        h('p', { class: 'muted small' }, [kbName, locationLabel(result) || null, result.section ? `§ ${result.section}` : null, `passage ${result.chunk_index + 1}`].filter(Boolean).join(' · ')),
      ),
      close,
    ),
    note,
    body,
  );
  close.addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', () => {
    dlg.remove();
    if (opener && opener.isConnected) opener.focus();
  });
  document.body.append(dlg);
  dlg.showModal();
  close.focus();

  let doc;
  try {
    doc = await call('GET', `/api/v1/documents/${result.document_id}/content`);
  } catch (e) {
    body.replaceChildren(h('p', { class: 'message error', role: 'alert' }, e instanceof ApiError && e.status === 404 ? 'This document no longer exists.' : e.message));
    return;
  }
  const { parts, how } = locatePassage(doc, result);
  const mark = h('mark', { class: 'passage', id: 'citation-passage' }, parts[1]);
  body.replaceChildren(h('div', { class: 'doc-text' }, parts[0], parts[1] ? mark : null, parts[2]));
  if (how === 'none') {
    note.replaceChildren(h('p', { class: 'message warning', role: 'status' }, 'The passage could not be placed in this document; showing the whole document.'));
  } else if (how === 'search') {
    note.replaceChildren(h('p', { class: 'muted small' }, 'Showing the stored document; the passage is placed by its words.'));
  }
  if (parts[1]) {
    // Centre the passage in the scrolling body.
    requestAnimationFrame(() => {
      body.scrollTop = Math.max(0, mark.offsetTop - body.offsetTop - body.clientHeight / 3);
    });
  }
}
