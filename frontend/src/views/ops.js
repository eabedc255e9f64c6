/* SPDX-License-Identifier: Apache-2.0 */
// Operations (administrators): readiness of each dependency with its latency, workers
// with their jobs and last heartbeat, queues with depth, oldest pending age and dead
// letters, the progress of `almanac reindex` runs; refreshed every few seconds.
import { call, readiness, ApiError } from '../api.js';
import { h, clear, ago, duration, confirmDialog, announce } from '../dom.js';
import { flashMessage, messageSlot, pageHeader, message, poll } from './common.js';

const REFRESH_MS = 5000;
const STATUS_LABEL = { pass: 'OK', warn: 'Warning', fail: 'Failing' };

function statusBadge(status) {
  return h('span', { class: `status status-${status}`, 'data-status': status }, STATUS_LABEL[status] || status);
}

function panel(id, title, ...rest) {
  return h('section', { class: 'panel card', id, 'aria-labelledby': `${id}-title` }, h('h2', { id: `${id}-title` }, title), ...rest);
}

function table(caption, headers, rows) {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'table' },
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows),
    ),
  );
}

function drawReadiness(el, r) {
  clear(el);
  if (!r.body || !r.body.checks) {
    el.append(message('error', `Readiness is not available (HTTP ${r.httpStatus}).`));
    return;
  }
  const overall = r.body.status;
  el.append(
    h('p', { class: 'overall' }, 'API: ', statusBadge(overall), r.httpStatus === 503 ? h('span', { class: 'muted' }, ' — not ready for traffic') : null),
  );
  const rows = [];
  for (const [key, list] of Object.entries(r.body.checks)) {
    const name = key.split(':')[0];
    for (const c of list || []) {
      rows.push(
        h(
          'tr',
          { 'data-check': name },
          h('th', { scope: 'row', 'data-label': 'Dependency' }, name, c.required === false ? h('span', { class: 'muted small' }, ' (optional)') : null),
          h('td', { 'data-label': 'Status' }, statusBadge(c.status)),
          h('td', { 'data-label': 'Latency' }, typeof c.observedValue === 'number' ? `${c.observedValue.toFixed(1)} ${c.observedUnit || 'ms'}` : '—'),
          h('td', { 'data-label': 'Details' }, c.output || '—'),
        ),
      );
    }
  }
  el.append(table('Readiness of each dependency', ['Dependency', 'Status', 'Latency', 'Details'], rows));
  const notes = r.body.notes || [];
  if (notes.length) el.append(h('ul', { class: 'notes', 'aria-label': 'Notes' }, notes.map((n) => h('li', {}, n))));
}

function jobText(j) {
  if (!j || typeof j !== 'object') return String(j);
  const started = j.started_at ? ` since ${new Date(j.started_at).toLocaleTimeString()}` : '';
  return `${j.type || 'job'} (${j.queue || '?'}, attempt ${j.attempt ?? 1})${started}`;
}

function drawWorkers(el, workers) {
  clear(el);
  if (!workers.length) {
    el.append(message('warning', 'No worker or beat is sending heartbeats.'));
    return;
  }
  const rows = workers.map((w) => {
    let work;
    if (w.role === 'beat') {
      const tasks = Object.entries(w.tasks || {});
      work = h(
        'div',
        {},
        h('p', {}, w.leader ? 'Leader' : 'Standby'),
        tasks.length
          ? h('ul', { class: 'compact' }, tasks.map(([n, t]) => h('li', {}, `${n}: ${t.runs} run${t.runs === 1 ? '' : 's'}${t.failures ? `, ${t.failures} failed` : ''}`)))
          : null,
      );
    } else {
      const jobs = w.jobs || [];
      work = h(
        'div',
        {},
        jobs.length ? h('ul', { class: 'compact' }, jobs.map((j) => h('li', {}, jobText(j)))) : h('p', { class: 'muted' }, 'Idle'),
        h('p', { class: 'muted small' }, `${w.processed ?? 0} done · ${w.failed ?? 0} failed · ${w.retried ?? 0} retried · ${w.dead ?? 0} dead`),
      );
    }
    return h(
      'tr',
      { 'data-worker': w.id, 'data-role': w.role },
      h('th', { scope: 'row', 'data-label': 'Process' }, h('span', { class: 'mono' }, w.id), h('span', { class: 'muted small block' }, `${w.role} · ${w.host} pid ${w.pid} · ${w.concurrency} slot${w.concurrency === 1 ? '' : 's'}`)),
      h('td', { 'data-label': 'Work' }, work),
      h(
        'td',
        { 'data-label': 'Last heartbeat' },
        w.last_seen_ms ? ago(w.last_seen_ms) : w.last_seen || '—',
        w.stale ? h('span', { class: 'status status-fail block' }, 'Stale') : null,
      ),
    );
  });
  el.append(table('Workers and beats', ['Process', 'Work', 'Last heartbeat'], rows));
}

function drawQueues(el, queues, onRetry) {
  clear(el);
  const dead = queues.reduce((n, q) => n + (q.dead || 0), 0);
  const rows = queues.map((q) =>
    h(
      'tr',
      { 'data-queue': q.name },
      h('th', { scope: 'row', 'data-label': 'Queue' }, q.name),
      h('td', { 'data-label': 'Waiting' }, String(q.length)),
      h('td', { 'data-label': 'In progress' }, String(q.pending)),
      h('td', { 'data-label': 'Oldest in progress' }, q.pending ? duration(q.oldest_pending_age_s) : '—'),
      h('td', { 'data-label': 'Delayed' }, String(q.delayed)),
      h('td', { 'data-label': 'Dead letters', class: q.dead ? 'attention' : null }, String(q.dead)),
      h('td', { 'data-label': 'Consumers' }, String(q.consumers)),
    ),
  );
  el.append(table('Job queues', ['Queue', 'Waiting', 'In progress', 'Oldest in progress', 'Delayed', 'Dead letters', 'Consumers'], rows));
  const retry = h('button', { type: 'button', class: 'button', disabled: dead === 0 }, `Retry dead letters (${dead})`);
  retry.addEventListener('click', onRetry);
  el.append(h('div', { class: 'panel-actions' }, retry));
}

function drawReindex(el, runs) {
  clear(el);
  if (!runs.length) {
    el.append(h('p', { class: 'muted' }, 'No re-indexing has run. Start one with almanac reindex.'));
    return;
  }
  const rows = runs.map((r) => {
    const settled = (r.ready || 0) + (r.failed || 0);
    const state = r.finished ? (settled >= r.queued ? 'Done' : 'Indexing') : 'Queuing (stopped runs resume when started again)';
    return h(
      'tr',
      { 'data-reindex': String(r.id) },
      h('th', { scope: 'row', 'data-label': 'Run' }, `#${r.id} ${r.scope}${r.knowledge_base_id ? ` ${r.knowledge_base_id}` : ''}`),
      h('td', { 'data-label': 'State' }, state),
      h('td', { 'data-label': 'Examined' }, `${r.examined} / ${r.total}`),
      h('td', { 'data-label': 'Queued' }, String(r.queued)),
      h('td', { 'data-label': 'Ready' }, String(r.ready)),
      h('td', { 'data-label': 'Failed', class: r.failed ? 'attention' : null }, String(r.failed)),
      h('td', { 'data-label': 'Started' }, r.started_at ? new Date(r.started_at).toLocaleString() : '—'),
    );
  });
  el.append(table('Re-indexing runs', ['Run', 'State', 'Examined', 'Queued', 'Ready', 'Failed', 'Started'], rows));
}

export function renderOperations(root, { flash }) {
  const controller = new AbortController();
  const msg = messageSlot();
  const readyEl = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const workersEl = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const queuesEl = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const reindexEl = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const updated = h('p', { class: 'muted small', id: 'ops-updated' }, '');

  const onRetry = async () => {
    const ok = await confirmDialog({
      title: 'Retry dead letters?',
      message: 'Every job in the dead-letter queues is queued again.',
      confirmLabel: 'Retry them',
    });
    if (!ok) return;
    try {
      const r = await call('POST', '/api/v1/admin/queues/retry-dead');
      msg.show('success', `${r.requeued} job${r.requeued === 1 ? '' : 's'} queued again.`);
      announce(`${r.requeued} jobs queued again.`);
    } catch (e) {
      msg.show('error', e instanceof ApiError ? e.message : 'Could not retry.');
    }
  };

  const refresh = async () => {
    const signal = controller.signal;
    const [r, w, q, x] = await Promise.allSettled([
      readiness({ signal }),
      call('GET', '/api/v1/admin/workers', { signal }),
      call('GET', '/api/v1/admin/queues', { signal }),
      call('GET', '/api/v1/admin/reindex', { signal }),
    ]);
    if (signal.aborted) return;
    if (r.status === 'fulfilled') drawReadiness(readyEl, r.value);
    else clear(readyEl).append(message('error', r.reason.message));
    if (w.status === 'fulfilled') drawWorkers(workersEl, w.value.workers || []);
    else clear(workersEl).append(message('error', w.reason.message));
    // Keep keyboard focus on the retry button across the redraw.
    const hadFocus = queuesEl.contains(document.activeElement);
    if (q.status === 'fulfilled') drawQueues(queuesEl, q.value.queues || [], onRetry);
    else clear(queuesEl).append(message('error', q.reason.message));
    if (hadFocus) queuesEl.querySelector('button')?.focus();
    if (x.status === 'fulfilled') drawReindex(reindexEl, x.value.runs || []);
    else clear(reindexEl).append(message('error', x.reason.message));
    updated.textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes every ${REFRESH_MS / 1000} s`;
  };

  root.append(
    pageHeader('Operations', updated),
    flashMessage(flash),
    msg.el,
    h(
      'div',
      { class: 'ops-grid' },
      panel('ops-readiness', 'Readiness', readyEl),
      panel('ops-queues', 'Queues', queuesEl),
      panel('ops-workers', 'Workers', workersEl),
      panel('ops-reindex', 'Re-indexing', reindexEl),
    ),
  );
  const stop = poll(refresh, REFRESH_MS);
  return () => {
    stop();
    controller.abort();
  };
}
