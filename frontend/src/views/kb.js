/* SPDX-License-Identifier: Apache-2.0 */
// One knowledge base: its documents with their status changing live (pending →
// processing → ready / failed), uploads by picker or drag and drop with progress per
// file, delete and re-process.
import { call, listAll, uploadFile, ApiError } from '../api.js';
import { h, clear, confirmDialog, announce, formatBytes, formatDate } from '../dom.js';
import { flashMessage, messageSlot, pageHeader, message, poll } from './common.js';
import { renameForm } from './kbs.js';

const ACCEPT = '.txt,.text,.md,.markdown,.html,.htm,text/plain,text/markdown,text/html';
const STATUS_TEXT = { pending: 'Pending', processing: 'Processing', ready: 'Ready', failed: 'Failed' };

function uploadErrorText(file, e) {
  if (!(e instanceof ApiError)) return 'The upload failed.';
  switch (e.status) {
    case 413:
      return `Too large: ${e.message.replace(/^document /, 'documents must not be ')}.`.replace(/\.\.$/, '.');
    case 415:
      return 'Unsupported file type. Upload text, Markdown, HTML, PDF, Word, PowerPoint, Excel, OpenDocument, EPUB or an image (PNG, JPEG, TIFF).';
    case 409:
      return 'Already in this knowledge base (same content).';
    case 422:
      return `Not accepted: ${e.message}.`;
    default:
      return e.message;
  }
}

export function renderKnowledgeBase(root, { params, flash, navigate, setFlash }) {
  const kbId = Number(params[0]);
  const controller = new AbortController();
  const msg = messageSlot();
  let kb = null;
  let docs = [];
  const known = new Map(); // id -> status, to announce changes
  let activeUploads = 0;
  let stopPoll = null;

  const titleSlot = h('div', { class: 'kb-title-slot' }, pageHeader('Knowledge base'));
  const docsRegion = h('section', { class: 'documents', 'aria-labelledby': 'docs-title' });
  const docsBody = h('div', { 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading documents…'));
  docsRegion.append(
    h('div', { class: 'section-header' }, h('h2', { id: 'docs-title' }, 'Documents'), h('span', { class: 'muted live-note' }, 'Status updates live')),
    docsBody,
  );

  // ---------------------------------------------------------------- header
  const drawTitle = () => {
    const renameBtn = h('button', { type: 'button', class: 'button subtle' }, 'Rename');
    const deleteBtn = h('button', { type: 'button', class: 'button subtle danger' }, 'Delete');
    renameBtn.addEventListener('click', () => {
      clear(titleSlot).append(
        renameForm(kb, (updated) => {
          if (updated) Object.assign(kb, updated);
          drawTitle();
          titleSlot.querySelector('button').focus();
        }),
      );
    });
    deleteBtn.addEventListener('click', async () => {
      const ok = await confirmDialog({
        title: `Delete “${kb.name}”?`,
        message: `Its ${docs.length} document${docs.length === 1 ? '' : 's'} and their search index go too. This cannot be undone.`,
        confirmLabel: 'Delete knowledge base',
        danger: true,
      });
      if (!ok) return;
      try {
        await call('DELETE', `/api/v1/knowledge-bases/${kb.id}`);
        setFlash({ kind: 'success', text: `Deleted “${kb.name}”.` });
        navigate('/');
      } catch (e) {
        msg.show('error', e instanceof ApiError ? e.message : 'Could not delete.');
      }
    });
    const h1 = h('h1', {}, kb.name);
    clear(titleSlot).append(
      h('nav', { class: 'breadcrumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Knowledge bases'), ' / '),
      h('div', { class: 'page-header' }, h1, h('div', { class: 'row-actions' }, renameBtn, deleteBtn)),
    );
  };

  // ---------------------------------------------------------------- uploads
  const uploadsList = h('ul', { class: 'uploads', 'aria-label': 'Uploads' });
  const fileInput = h('input', { id: 'file-input', type: 'file', multiple: true, accept: ACCEPT, class: 'file-input' });
  const drop = h(
    'div',
    { class: 'dropzone', id: 'dropzone' },
    h('p', { class: 'dropzone-title' }, 'Drop files here'),
    h('p', { class: 'muted' }, 'or'),
    h('label', { for: 'file-input', class: 'button primary file-label' }, 'Choose files to upload'),
    fileInput,
    h('p', { class: 'muted small' }, 'Plain text, Markdown or HTML.'),
  );
  ['dragenter', 'dragover'].forEach((t) =>
    drop.addEventListener(t, (ev) => {
      ev.preventDefault();
      drop.classList.add('dragging');
    }),
  );
  ['dragleave', 'drop'].forEach((t) => drop.addEventListener(t, () => drop.classList.remove('dragging')));
  drop.addEventListener('drop', (ev) => {
    ev.preventDefault();
    if (ev.dataTransfer && ev.dataTransfer.files.length) startUploads([...ev.dataTransfer.files]);
  });
  fileInput.addEventListener('change', () => {
    startUploads([...fileInput.files]);
    fileInput.value = '';
  });

  function startUploads(files) {
    for (const file of files) {
      const progress = h('progress', { max: 100, value: 0, 'aria-label': `Upload progress of ${file.name}` });
      const state = h('span', { class: 'upload-state' }, 'Uploading…');
      const li = h(
        'li',
        { class: 'upload', 'data-filename': file.name },
        h('span', { class: 'upload-name' }, file.name, h('span', { class: 'muted' }, ` · ${formatBytes(file.size)}`)),
        progress,
        state,
      );
      uploadsList.prepend(li);
      activeUploads += 1;
      uploadFile(kbId, file, {
        signal: controller.signal,
        onProgress: (loaded, total) => {
          progress.value = total ? Math.round((loaded / total) * 100) : 0;
        },
      })
        .then((doc) => {
          progress.value = 100;
          li.classList.add('done');
          state.textContent = 'Uploaded, waiting to be processed';
          announce(`${file.name} uploaded.`);
          known.set(doc.id, doc.status);
          if (!docs.some((d) => d.id === doc.id)) docs.unshift(doc);
          drawDocs();
          // The row in the table tells the rest; the upload line goes after a while.
          setTimeout(() => li.remove(), 8000);
        })
        .catch((e) => {
          if (e.code === 'aborted') return;
          li.classList.add('failed');
          progress.remove();
          state.textContent = uploadErrorText(file, e);
          state.setAttribute('role', 'alert');
          const dismiss = h('button', { type: 'button', class: 'button subtle', 'aria-label': `Dismiss message about ${file.name}` }, 'Dismiss');
          dismiss.addEventListener('click', () => {
            li.remove();
            fileInput.focus();
          });
          li.append(dismiss);
        })
        .finally(() => {
          activeUploads -= 1;
        });
    }
  }

  // ---------------------------------------------------------------- documents
  const drawDocs = () => {
    docsBody.setAttribute('aria-busy', 'false');
    clear(docsBody);
    if (!docs.length) {
      docsBody.append(h('p', { class: 'empty' }, 'No documents yet. Upload some above.'));
      return;
    }
    const table = h(
      'table',
      { class: 'table docs-table' },
      h('caption', { class: 'visually-hidden' }, `Documents of ${kb ? kb.name : 'this knowledge base'}`),
      h(
        'thead',
        {},
        h('tr', {}, ...['Document', 'Status', 'Chunks', 'Size', 'Updated', 'Actions'].map((t) => h('th', { scope: 'col' }, t))),
      ),
    );
    const tbody = h('tbody');
    for (const d of docs) tbody.append(docRow(d));
    table.append(tbody);
    docsBody.append(h('div', { class: 'table-wrap' }, table));
  };

  const docRow = (d) => {
    const reprocess = h('button', { type: 'button', class: 'button subtle', 'aria-label': `Re-process ${d.title}` }, 'Re-process');
    const del = h('button', { type: 'button', class: 'button subtle danger', 'aria-label': `Delete ${d.title}` }, 'Delete');
    reprocess.disabled = d.status === 'pending' || d.status === 'processing';
    reprocess.addEventListener('click', async () => {
      try {
        const upd = await call('POST', `/api/v1/documents/${d.id}/reprocess`);
        Object.assign(d, upd);
        known.set(d.id, d.status);
        announce(`${d.title} will be processed again.`);
        drawDocs();
        refreshSoon();
      } catch (e) {
        msg.show('error', e instanceof ApiError ? e.message : 'Could not re-process.');
      }
    });
    del.addEventListener('click', async () => {
      const ok = await confirmDialog({
        title: `Delete “${d.title}”?`,
        message: 'The document and its search index go. This cannot be undone.',
        confirmLabel: 'Delete document',
        danger: true,
      });
      if (!ok) return;
      try {
        await call('DELETE', `/api/v1/documents/${d.id}`);
        docs = docs.filter((x) => x.id !== d.id);
        drawDocs();
        msg.show('success', `Deleted “${d.title}”.`);
        fileInput.focus();
      } catch (e) {
        msg.show('error', e instanceof ApiError ? e.message : 'Could not delete.');
      }
    });
    const status = h(
      'td',
      { 'data-label': 'Status' },
      h('span', { class: `status status-${d.status}`, 'data-status': d.status }, STATUS_TEXT[d.status] || d.status),
      d.status === 'failed' && d.error ? h('p', { class: 'doc-error' }, d.error) : null,
    );
    return h(
      'tr',
      { 'data-doc-id': d.id, 'data-status': d.status },
      h(
        'th',
        { scope: 'row', 'data-label': 'Document' },
        h('span', { class: 'doc-title' }, d.title),
        h('span', { class: 'muted small doc-file' }, `${d.filename} · ${d.media_type}`),
      ),
      status,
      h('td', { 'data-label': 'Chunks' }, String(d.chunk_count)),
      h('td', { 'data-label': 'Size' }, formatBytes(d.size_bytes)),
      h('td', { 'data-label': 'Updated' }, formatDate(d.processed_at || d.updated_at)),
      h('td', { 'data-label': 'Actions', class: 'actions-cell' }, h('div', { class: 'row-actions' }, reprocess, del)),
    );
  };

  const busy = () => activeUploads > 0 || docs.some((d) => d.status === 'pending' || d.status === 'processing');

  async function refresh() {
    const items = await listAll(`/api/v1/knowledge-bases/${kbId}/documents`, 'documents', { signal: controller.signal, maxPages: 5 });
    for (const d of items) {
      const before = known.get(d.id);
      if (before && before !== d.status) {
        if (d.status === 'ready') announce(`${d.title} is ready.`);
        else if (d.status === 'failed') announce(`${d.title} failed: ${d.error || 'no reason given'}.`);
        else if (d.status === 'processing') announce(`${d.title} is being processed.`);
      }
      known.set(d.id, d.status);
    }
    docs = items;
    // Keep keyboard focus on the same button across a redraw.
    const focused = document.activeElement;
    const focusKey = focused && focused.closest && focused.closest('tr[data-doc-id]') ? [focused.closest('tr').dataset.docId, focused.getAttribute('aria-label')] : null;
    drawDocs();
    if (focusKey) {
      const again = docsBody.querySelector(`tr[data-doc-id="${focusKey[0]}"] [aria-label="${CSS.escape(focusKey[1] || '')}"]`);
      if (again) again.focus();
    }
  }

  let kick = null;
  function refreshSoon() {
    if (kick) kick();
  }

  root.append(titleSlot, flashMessage(flash), msg.el, h('section', { class: 'upload-section card', 'aria-label': 'Upload documents' }, drop, uploadsList), docsRegion);

  call('GET', `/api/v1/knowledge-bases/${kbId}`, { signal: controller.signal })
    .then((k) => {
      kb = k;
      document.title = `${kb.name} · Almanac`;
      drawTitle();
      stopPoll = poll(refresh, () => (busy() ? 1500 : 8000));
      kick = () => {
        if (stopPoll) stopPoll();
        stopPoll = poll(refresh, () => (busy() ? 1500 : 8000));
      };
    })
    .catch((e) => {
      if (e.name === 'AbortError') return;
      clear(titleSlot).append(pageHeader('Knowledge base'));
      clear(docsBody).append(message('error', e.status === 404 ? 'This knowledge base does not exist, or you may not see it.' : e.message));
    });

  return () => {
    controller.abort();
    if (stopPoll) stopPoll();
  };
}
