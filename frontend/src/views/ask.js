/* SPDX-License-Identifier: Apache-2.0 */
// Ask: a question answered from the chosen knowledge bases, streamed in as the model
// writes it. Citation markers [n] open their passage in its document (with its page,
// slide, sheet or chapter when known); Stop (or Escape) ends the answer; the
// conversation list on the side continues, renames or deletes earlier conversations.
// When no answer can be had, the search results are shown with the reason.
import { call, listAll, stream, ApiError } from '../api.js';
import { h, clear, announce, confirmDialog, snippetNodes } from '../dom.js';
import { flashMessage, messageSlot, pageHeader, message } from './common.js';
import { openCitation, locationLabel } from './citation.js';

const MARKER = /\[(\d+(?:\s*,\s*\d+)*)\]/g;

/** Text with its [n] markers as buttons that open the cited passages. */
export function answerNodes(text, citations, kbName) {
  const byN = new Map((citations || []).map((c) => [c.n, c]));
  const out = [];
  let last = 0;
  for (const m of text.matchAll(MARKER)) {
    out.push(text.slice(last, m.index));
    last = m.index + m[0].length;
    const ns = m[1].split(',').map((x) => Number(x.trim()));
    if (!ns.some((n) => byN.has(n))) {
      out.push(m[0]); // cites nothing that was in the prompt: plain text
      continue;
    }
    for (const n of ns) {
      const c = byN.get(n);
      if (!c) continue;
      const where = locationLabel(c);
      const label = `Source ${n}: ${c.title}${c.section ? `, ${c.section}` : ''}${where ? `, ${where}` : ''}${c.gone ? ' (deleted)' : ''}`;
      const b = h('button', { type: 'button', class: 'cite', 'aria-label': label, title: label, disabled: c.gone ? true : null }, `[${n}]`);
      b.addEventListener('click', () => openCitation(c, { kbName: kbName(c.knowledge_base_id) }));
      out.push(b);
    }
  }
  out.push(text.slice(last));
  return out;
}

export function renderAsk(root, { flash }) {
  const controller = new AbortController();
  let kbs = [];
  let conversations = [];
  let current = null; // conversation id
  let pending = null; // AbortController of the answer being streamed
  const msg = messageSlot();
  const kbName = (id) => (kbs.find((k) => k.id === id) || {}).name || `#${id}`;

  const question = h('textarea', {
    id: 'ask-question',
    name: 'question',
    rows: 2,
    maxlength: 1000,
    placeholder: 'Ask a question about your documents',
    required: true,
  });
  const submit = h('button', { type: 'submit', class: 'button primary' }, 'Ask');
  const stop = h('button', { type: 'button', class: 'button', hidden: true }, 'Stop');
  const form = h(
    'form',
    { class: 'ask-form card', 'aria-label': 'Ask a question' },
    h('div', { class: 'field grow' }, h('label', { for: 'ask-question' }, 'Question'), question),
    h('div', { class: 'ask-actions' }, submit, stop, h('span', { class: 'muted small' }, 'Enter asks, Shift+Enter starts a new line, Escape stops.')),
  );
  const thread = h('section', { class: 'ask-thread', 'aria-label': 'Conversation', 'aria-live': 'polite' });
  const list = h('ul', { class: 'conversation-list' });
  const newButton = h('button', { type: 'button', class: 'button subtle small' }, 'New conversation');
  const side = h('aside', { class: 'ask-side card', 'aria-label': 'Conversations' }, h('div', { class: 'section-header' }, h('h2', {}, 'Conversations'), newButton), list);

  const resultsList = (results) =>
    h(
      'ol',
      { class: 'result-list' },
      results.map((r) =>
        h(
          'li',
          { class: 'result card' },
          h('h4', { class: 'result-title' }, h('button', { type: 'button', class: 'link-button', onclick: () => openCitation(r, { kbName: kbName(r.knowledge_base_id) }) }, r.title)),
          h('p', { class: 'snippet' }, snippetNodes(r.snippet)),
        ),
      ),
    );

  /** One turn's elements; update() redraws the answer as it grows. */
  const turnView = (q) => {
    const answer = h('div', { class: 'answer-text' });
    const extra = h('div', { class: 'answer-extra' });
    const el = h('article', { class: 'turn' }, h('p', { class: 'turn-question' }, h('strong', {}, 'You: '), q), answer, extra);
    thread.append(el);
    return {
      el,
      text(t, citations = null) {
        answer.replaceChildren(...answerNodes(t, citations, kbName));
      },
      finish({ citations, answer_unavailable: un, nothing_relevant: none, results, stopped }) {
        clear(extra);
        const cited = (citations || []).filter((c) => c);
        if (cited.length) {
          extra.append(
            h(
              'ol',
              { class: 'sources', 'aria-label': 'Sources' },
              cited.map((c) =>
                h(
                  'li',
                  { value: c.n },
                  h(
                    'button',
                    { type: 'button', class: 'link-button', disabled: c.gone ? true : null, onclick: () => openCitation(c, { kbName: kbName(c.knowledge_base_id) }) },
                    `${c.title}${c.section ? ` § ${c.section}` : ''}${locationLabel(c) ? `, ${locationLabel(c)}` : ''}`,
                  ),
                  c.gone ? h('span', { class: 'muted small' }, ' (deleted)') : null,
                ),
              ),
            ),
          );
        }
        if (stopped) extra.append(message('info', 'Stopped.'));
        if (un) {
          extra.append(message('warning', `No answer: ${un.message || un.reason}.`));
          if (results && results.length) extra.append(h('h3', {}, 'Search results'), resultsList(results));
        }
        if (none) extra.append(h('p', { class: 'muted small' }, 'Try other words, or choose more knowledge bases.'));
      },
    };
  };

  const drawList = () => {
    clear(list);
    if (!conversations.length) list.append(h('li', { class: 'muted small' }, 'No conversations yet.'));
    for (const c of conversations) {
      const open = h('button', { type: 'button', class: 'link-button conversation-open', 'aria-current': c.id === current ? 'true' : null }, c.title);
      open.addEventListener('click', () => openConversation(c.id));
      const rename = h('button', { type: 'button', class: 'button subtle small', 'aria-label': `Rename ${c.title}` }, 'Rename');
      const del = h('button', { type: 'button', class: 'button subtle small danger', 'aria-label': `Delete ${c.title}` }, 'Delete');
      const li = h('li', { class: 'conversation', 'data-id': c.id }, open, h('span', { class: 'conversation-actions' }, rename, del));
      rename.addEventListener('click', () => {
        const input = h('input', { type: 'text', value: c.title, maxlength: 200, 'aria-label': 'New title' });
        const save = h('button', { type: 'submit', class: 'button small' }, 'Save');
        const f = h('form', { class: 'rename-form' }, input, save);
        f.addEventListener('submit', async (ev) => {
          ev.preventDefault();
          try {
            await call('PATCH', `/api/v1/conversations/${c.id}`, { json: { title: input.value.trim() } });
            c.title = input.value.trim();
            drawList();
          } catch (e) {
            msg.show('error', e.message);
          }
        });
        input.addEventListener('keydown', (ev) => ev.key === 'Escape' && drawList());
        li.replaceChildren(f);
        input.focus();
        input.select();
      });
      del.addEventListener('click', async () => {
        const ok = await confirmDialog({ title: 'Delete this conversation?', message: `“${c.title}” and its answers are deleted.`, confirmLabel: 'Delete', danger: true });
        if (!ok) return;
        try {
          await call('DELETE', `/api/v1/conversations/${c.id}`);
          conversations = conversations.filter((x) => x.id !== c.id);
          if (current === c.id) startNew();
          drawList();
          announce('Conversation deleted.');
        } catch (e) {
          msg.show('error', e.message);
        }
      });
      list.append(li);
    }
  };

  const loadList = async () => {
    conversations = await listAll('/api/v1/conversations', 'conversations', { signal: controller.signal, maxPages: 2 });
    drawList();
  };

  const startNew = () => {
    if (pending) pending.abort();
    current = null;
    clear(thread);
    drawList();
    question.focus();
  };

  const openConversation = async (id) => {
    if (pending) pending.abort();
    msg.clear();
    try {
      const c = await call('GET', `/api/v1/conversations/${id}`, { signal: controller.signal });
      current = id;
      clear(thread);
      for (const t of c.turns) {
        const v = turnView(t.question);
        v.text(t.answer || '', t.citations);
        v.finish({ citations: t.citations, answer_unavailable: t.answer_unavailable, nothing_relevant: t.nothing_relevant });
      }
      drawList();
      question.focus();
    } catch (e) {
      if (e.name !== 'AbortError') msg.show('error', e.message);
    }
  };

  const setBusy = (busy) => {
    submit.disabled = busy;
    stop.hidden = !busy;
    thread.setAttribute('aria-busy', busy ? 'true' : 'false');
  };

  const ask = async () => {
    msg.clear();
    const q = question.value.trim();
    if (!q) {
      msg.show('error', 'Type a question first.');
      question.focus();
      return;
    }
    if (pending) pending.abort();
    pending = new AbortController();
    const mine = pending;
    const v = turnView(q);
    let text = '';
    let citations = [];
    let finished = null;
    setBusy(true);
    question.value = '';
    v.el.scrollIntoView({ block: 'nearest' });
    try {
      await stream('/api/v1/answers', { question: q, stream: true, ...(current ? { conversation_id: current } : {}) }, {
        signal: mine.signal,
        onEvent: (name, data) => {
          if (name === 'start' && !current) current = data.conversation_id;
          else if (name === 'delta') {
            text += data.text;
            v.text(text);
          } else if (name === 'citations') {
            citations = data.citations;
            v.text(text, citations);
          } else if (name === 'done') finished = data;
        },
      });
      v.finish({ citations, ...(finished || {}) });
      announce(finished && finished.answer_unavailable ? 'No answer; search results shown.' : 'Answer complete.');
      if (!conversations.some((c) => c.id === current)) loadList().catch(() => {});
    } catch (e) {
      if (e.name === 'AbortError') {
        v.text(text);
        v.finish({ stopped: true });
      } else {
        v.el.remove();
        question.value = q;
        msg.show('error', e instanceof ApiError ? e.message : 'The question could not be answered.');
      }
    } finally {
      if (pending === mine) pending = null;
      setBusy(false);
      drawList();
    }
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    ask();
  });
  question.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      ask();
    }
  });
  const onEscape = (ev) => {
    if (ev.key === 'Escape' && pending && !document.querySelector('dialog[open]')) pending.abort();
  };
  document.addEventListener('keydown', onEscape);
  stop.addEventListener('click', () => pending && pending.abort());
  newButton.addEventListener('click', startNew);

  root.append(
    pageHeader('Ask'),
    flashMessage(flash),
    h('div', { class: 'ask-layout' }, h('div', { class: 'ask-main' }, thread, msg.el, form), side),
  );
  listAll('/api/v1/knowledge-bases', 'knowledge_bases', { signal: controller.signal })
    .then((items) => {
      kbs = items;
      if (!kbs.length) msg.show('info', 'Create a knowledge base and upload documents to ask about them.');
    })
    .catch(() => {});
  loadList().catch((e) => e.name !== 'AbortError' && clear(list).append(h('li', {}, message('error', e.message))));
  setTimeout(() => question.focus(), 0);

  return () => {
    if (pending) pending.abort();
    document.removeEventListener('keydown', onEscape);
    controller.abort();
  };
}
