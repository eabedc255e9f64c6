/* SPDX-License-Identifier: Apache-2.0 */
// Small DOM helpers. Text always goes in as text nodes: the one place where markup from
// the server is shown (search snippets) goes through snippetNodes(), which only ever
// creates <mark> elements and text.

/**
 * h('button', {class: 'primary', onclick: fn, type: 'button'}, 'Save')
 * Attributes are set with setAttribute, except: on* (listeners), text, value, checked,
 * disabled, hidden (properties). null/undefined/false attributes are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'hidden') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

const ENTITIES = { '&lt;': '<', '&gt;': '>', '&amp;': '&', '&quot;': '"', '&#39;': "'" };

/** The text of an HTML-escaped string (the five entities the api writes). */
export function unescapeHtml(s) {
  return s.replace(/&(?:lt|gt|amp|quot|#39);/g, (m) => ENTITIES[m]);
}

/**
 * Nodes of a search snippet: HTML-escaped text in which <mark>…</mark> are the only tags.
 * Anything else that looks like a tag stays text, so a snippet can never inject markup.
 */
export function snippetNodes(snippet) {
  const out = [];
  let marked = false;
  for (const part of String(snippet).split(/(<mark>|<\/mark>)/)) {
    if (part === '<mark>') marked = true;
    else if (part === '</mark>') marked = false;
    else if (part) {
      const text = unescapeHtml(part);
      out.push(marked ? h('mark', {}, text) : document.createTextNode(text));
    }
  }
  return out;
}

/** The plain text of a snippet (marks dropped, entities decoded). */
export function snippetText(snippet) {
  return unescapeHtml(String(snippet).replace(/<\/?mark>/g, ''));
}

/** Announces a message to screen readers through the page's live region. */
export function announce(message) {
  const el = document.getElementById('announcer');
  if (!el) return;
  el.textContent = '';
  // A tick later, so that the same message twice is read twice.
  setTimeout(() => {
    el.textContent = message;
  }, 50);
}

let uid = 0;
/** A fresh id for label/aria references. */
export function nextId(prefix = 'id') {
  uid += 1;
  return `${prefix}-${uid}`;
}

export function formatBytes(n) {
  if (!Number.isFinite(n)) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

export function formatDate(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** "12 s ago", "3 min ago" from a time in ms. */
export function ago(ms, now = Date.now()) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

export function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/**
 * A modal confirmation (a native <dialog>: focus moves in, Escape cancels, focus returns).
 * Resolves true when confirmed.
 */
export function confirmDialog({ title, message, confirmLabel = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const titleId = nextId('confirm-title');
    const cancel = h('button', { type: 'button', class: 'button' }, 'Cancel');
    const ok = h('button', { type: 'button', class: danger ? 'button danger' : 'button primary' }, confirmLabel);
    const dlg = h(
      'dialog',
      { class: 'dialog confirm', 'aria-labelledby': titleId },
      h('h2', { id: titleId }, title),
      h('p', {}, message),
      h('div', { class: 'actions' }, cancel, ok),
    );
    let result = false;
    cancel.addEventListener('click', () => dlg.close());
    ok.addEventListener('click', () => {
      result = true;
      dlg.close();
    });
    dlg.addEventListener('close', () => {
      dlg.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve(result);
    });
    document.body.append(dlg);
    dlg.showModal();
    cancel.focus();
  });
}
