/* SPDX-License-Identifier: Apache-2.0 */
// Search across chosen knowledge bases; each result shows its highlighted snippet,
// document, section and score, and opens the passage in its document (the citation).
import { call, listAll, ApiError } from '../api.js';
import { h, clear, snippetNodes, announce } from '../dom.js';
import { flashMessage, messageSlot, pageHeader, message } from './common.js';
import { openCitation, locationLabel } from './citation.js';

export function renderSearch(root, { flash }) {
  const controller = new AbortController();
  let kbs = [];
  let pending = null;
  const msg = messageSlot();
  const query = h('input', {
    id: 'search-query',
    type: 'search',
    name: 'q',
    autocomplete: 'off',
    maxlength: 1000,
    placeholder: 'Ask a question or type keywords',
    required: true,
  });
  const mode = h(
    'select',
    { id: 'search-mode', name: 'mode' },
    h('option', { value: 'hybrid' }, 'Keyword and meaning'),
    h('option', { value: 'keyword' }, 'Keyword only'),
    h('option', { value: 'vector' }, 'Meaning only'),
  );
  const kbBox = h('div', { class: 'kb-choices' }, h('p', { class: 'muted' }, 'Loading knowledge bases…'));
  const kbFieldset = h('fieldset', { class: 'kb-fieldset' }, h('legend', {}, 'Knowledge bases'), kbBox);
  const submit = h('button', { type: 'submit', class: 'button primary' }, 'Search');
  const form = h(
    'form',
    { class: 'search-form card', role: 'search', 'aria-label': 'Search documents' },
    h(
      'div',
      { class: 'search-row' },
      h('div', { class: 'field grow' }, h('label', { for: 'search-query' }, 'Search'), query),
      h('div', { class: 'field' }, h('label', { for: 'search-mode' }, 'Match by'), mode),
      submit,
    ),
    kbFieldset,
  );
  const results = h('section', { class: 'results', 'aria-labelledby': 'results-title', 'aria-live': 'polite', 'aria-busy': 'false' });

  const chosen = () => [...kbBox.querySelectorAll('input[type=checkbox]:checked')].map((c) => Number(c.value));
  const kbName = (id) => (kbs.find((k) => k.id === id) || {}).name || `#${id}`;

  const drawKbs = () => {
    clear(kbBox);
    if (!kbs.length) {
      kbBox.append(h('p', { class: 'muted' }, 'No knowledge bases yet.'));
      return;
    }
    for (const kb of kbs) {
      const id = `kb-choice-${kb.id}`;
      kbBox.append(
        h('div', { class: 'check' }, h('input', { type: 'checkbox', id, value: kb.id, checked: true }), h('label', { for: id }, kb.name)),
      );
    }
  };

  const drawResults = (answer, q) => {
    clear(results);
    const n = answer.results.length;
    results.append(
      h(
        'div',
        { class: 'section-header' },
        h('h2', { id: 'results-title' }, n ? `${n} result${n === 1 ? '' : 's'}` : 'No results'),
        h('span', { class: 'muted small' }, `${answer.mode} search · ${answer.took_ms} ms`),
      ),
    );
    if (answer.degraded) {
      results.append(
        message(
          'warning',
          `Results are from keyword search only: meaning-based search is unavailable right now${answer.degraded_reason ? ` (${answer.degraded_reason})` : ''}.`,
        ),
      );
    }
    if (!n) {
      results.append(h('p', { class: 'empty' }, `Nothing matched “${q}”. Try other words or more knowledge bases.`));
      return;
    }
    const ol = h('ol', { class: 'result-list' });
    answer.results.forEach((r, i) => {
      const open = h('button', { type: 'button', class: 'result-open link-button' }, r.title);
      open.addEventListener('click', () => openCitation(r, { kbName: kbName(r.knowledge_base_id) }));
      ol.append(
        h(
          'li',
          { class: 'result card', 'data-document-id': r.document_id, 'data-rank': i + 1 },
          h('h3', { class: 'result-title' }, open),
          h(
            'p',
            { class: 'result-meta muted small' },
            h('span', {}, kbName(r.knowledge_base_id)),
            locationLabel(r) ? h('span', { class: 'result-location' }, ` · ${locationLabel(r)}`) : null,
            r.section ? h('span', {}, ` · § ${r.section}`) : null,
            h('span', {}, ` · score ${Number(r.score).toFixed(3)}`),
            r.sources && r.sources.length ? h('span', {}, ` · ${r.sources.join(' + ')}`) : null,
          ),
          h('p', { class: 'snippet' }, snippetNodes(r.snippet)),
          h(
            'button',
            { type: 'button', class: 'button subtle small', onclick: () => openCitation(r, { kbName: kbName(r.knowledge_base_id) }), 'aria-label': `Show the passage in ${r.title}` },
            'Show passage',
          ),
        ),
      );
    });
    results.append(ol);
  };

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.clear();
    const q = query.value.trim();
    if (!q) {
      msg.show('error', 'Type something to search for.');
      query.focus();
      return;
    }
    const ids = chosen();
    if (kbs.length && !ids.length) {
      msg.show('error', 'Choose at least one knowledge base.');
      kbBox.querySelector('input')?.focus();
      return;
    }
    if (pending) pending.abort();
    pending = new AbortController();
    const signal = pending.signal;
    controller.signal.addEventListener('abort', () => pending && pending.abort());
    submit.disabled = true;
    results.setAttribute('aria-busy', 'true');
    try {
      const answer = await call('POST', '/api/v1/search', {
        json: { query: q, knowledge_base_ids: ids, mode: mode.value, limit: 20 },
        signal,
      });
      drawResults(answer, q);
      announce(`${answer.results.length} results${answer.degraded ? ', keyword search only' : ''}.`);
    } catch (e) {
      if (e.name === 'AbortError') return;
      clear(results);
      msg.show('error', e instanceof ApiError ? e.message : 'Search failed.');
    } finally {
      submit.disabled = false;
      results.setAttribute('aria-busy', 'false');
    }
  });

  root.append(pageHeader('Search'), flashMessage(flash), form, msg.el, results);

  listAll('/api/v1/knowledge-bases', 'knowledge_bases', { signal: controller.signal })
    .then((items) => {
      kbs = items;
      drawKbs();
    })
    .catch((e) => {
      if (e.name === 'AbortError') return;
      clear(kbBox).append(message('error', e.message));
    });
  setTimeout(() => query.focus(), 0);

  return () => controller.abort();
}
