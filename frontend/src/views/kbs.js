/* SPDX-License-Identifier: Apache-2.0 */
// Knowledge bases: list, create, rename, delete (with confirmation).
import { call, listAll, ApiError } from '../api.js';
import { h, clear, confirmDialog, announce, formatDate } from '../dom.js';
import { flashMessage, messageSlot, pageHeader, message } from './common.js';

/** An inline rename form for a knowledge base; resolves through onDone(renamedOrNull). */
export function renameForm(kb, onDone) {
  const id = `rename-${kb.id}`;
  const input = h('input', { id, type: 'text', value: kb.name, maxlength: 200, required: true });
  const err = h('p', { class: 'field-error', id: `${id}-error`, role: 'alert' });
  const form = h(
    'form',
    { class: 'inline-form' },
    h('label', { for: id, class: 'visually-hidden' }, `New name for ${kb.name}`),
    input,
    h('button', { type: 'submit', class: 'button primary' }, 'Save'),
    h('button', { type: 'button', class: 'button', onclick: () => onDone(null) }, 'Cancel'),
    err,
  );
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') onDone(null);
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = input.value.trim();
    if (!name) {
      err.textContent = 'Enter a name.';
      input.setAttribute('aria-describedby', err.id);
      input.focus();
      return;
    }
    try {
      const updated = await call('PATCH', `/api/v1/knowledge-bases/${kb.id}`, { json: { name } });
      announce(`Renamed to ${updated.name}.`);
      onDone(updated);
    } catch (e) {
      err.textContent = e instanceof ApiError ? e.message : 'Could not rename.';
      input.setAttribute('aria-describedby', err.id);
      input.focus();
    }
  });
  setTimeout(() => {
    input.focus();
    input.select();
  }, 0);
  return form;
}

export function renderKnowledgeBases(root, { flash, navigate }) {
  const controller = new AbortController();
  const msg = messageSlot();
  const list = h('div', { class: 'kb-list', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
  const nameInput = h('input', { id: 'kb-new-name', name: 'name', type: 'text', maxlength: 200, required: true, autocomplete: 'off' });
  const create = h(
    'form',
    { class: 'create-form card' },
    h('div', { class: 'field grow' }, h('label', { for: 'kb-new-name' }, 'New knowledge base name'), nameInput),
    h('button', { type: 'submit', class: 'button primary' }, 'Create knowledge base'),
  );
  let kbs = [];

  const draw = () => {
    clear(list);
    list.setAttribute('aria-busy', 'false');
    if (!kbs.length) {
      list.append(h('p', { class: 'empty' }, 'No knowledge bases yet. Create one to upload documents.'));
      return;
    }
    const ul = h('ul', { class: 'cards', 'aria-label': 'Knowledge bases' });
    for (const kb of kbs) ul.append(row(kb));
    list.append(ul);
  };

  const row = (kb) => {
    const li = h('li', { class: 'card kb-card', 'data-kb-id': kb.id });
    const show = () => {
      clear(li);
      const renameBtn = h('button', { type: 'button', class: 'button subtle', 'aria-label': `Rename ${kb.name}` }, 'Rename');
      const deleteBtn = h('button', { type: 'button', class: 'button subtle danger', 'aria-label': `Delete ${kb.name}` }, 'Delete');
      renameBtn.addEventListener('click', () => {
        clear(li);
        li.append(
          renameForm(kb, (updated) => {
            if (updated) Object.assign(kb, updated);
            show();
            li.querySelector('button[aria-label^="Rename"]').focus();
          }),
        );
      });
      deleteBtn.addEventListener('click', async () => {
        const n = kb.document_count;
        const ok = await confirmDialog({
          title: `Delete “${kb.name}”?`,
          message: `Its ${n} document${n === 1 ? '' : 's'} and their search index go too. This cannot be undone.`,
          confirmLabel: 'Delete knowledge base',
          danger: true,
        });
        if (!ok) return;
        try {
          await call('DELETE', `/api/v1/knowledge-bases/${kb.id}`);
          kbs = kbs.filter((k) => k.id !== kb.id);
          draw();
          msg.show('success', `Deleted “${kb.name}”.`);
          nameInput.focus();
        } catch (e) {
          msg.show('error', e instanceof ApiError ? e.message : 'Could not delete.');
        }
      });
      li.append(
        h(
          'div',
          { class: 'kb-main' },
          h('h2', { class: 'kb-name' }, h('a', { href: `#/kb/${kb.id}` }, kb.name)),
          h(
            'p',
            { class: 'muted' },
            `${kb.document_count} document${kb.document_count === 1 ? '' : 's'} · updated ${formatDate(kb.updated_at)}`,
          ),
        ),
        h('div', { class: 'row-actions' }, renameBtn, deleteBtn),
      );
    };
    show();
    return li;
  };

  create.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.clear();
    const name = nameInput.value.trim();
    if (!name) {
      msg.show('error', 'Enter a name for the knowledge base.');
      nameInput.focus();
      return;
    }
    try {
      const kb = await call('POST', '/api/v1/knowledge-bases', { json: { name } });
      announce(`Created ${kb.name}.`);
      navigate(`/kb/${kb.id}`);
    } catch (e) {
      msg.show('error', e instanceof ApiError ? e.message : 'Could not create the knowledge base.');
      nameInput.focus();
    }
  });

  root.append(
    pageHeader('Knowledge bases'),
    flashMessage(flash),
    msg.el,
    create,
    list,
  );

  listAll('/api/v1/knowledge-bases', 'knowledge_bases', { signal: controller.signal })
    .then((items) => {
      kbs = items;
      draw();
    })
    .catch((e) => {
      if (e.name === 'AbortError') return;
      clear(list).append(message('error', e.message || 'Could not load the knowledge bases.'));
    });

  return () => controller.abort();
}
