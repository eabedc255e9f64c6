/* SPDX-License-Identifier: Apache-2.0 */
// Pieces shared by views: messages, page headings, a polling loop that pauses while the
// tab is hidden.
import { h } from '../dom.js';

/** A message box: kind is error | info | success | warning. Errors are alerts. */
export function message(kind, text, extra = null) {
  return h(
    'div',
    { class: `message ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('p', {}, text),
    extra,
  );
}

/** A slot that shows one message at a time (or none). */
export function messageSlot() {
  const el = h('div', { class: 'message-slot' });
  return {
    el,
    show(kind, text) {
      el.replaceChildren(message(kind, text));
    },
    clear() {
      el.replaceChildren();
    },
  };
}

export function flashMessage(flash) {
  return flash ? message(flash.kind, flash.text) : '';
}

export function pageHeader(title, ...rest) {
  return h('div', { class: 'page-header' }, h('h1', {}, title), ...rest);
}

/**
 * Calls fn now and then every intervalMs (waiting for each call to finish), paused while
 * the document is hidden. Returns stop().
 */
export function poll(fn, intervalMs) {
  let timer = null;
  let stopped = false;
  let running = false;
  const tick = async () => {
    if (stopped || running) return;
    if (document.hidden) {
      schedule();
      return;
    }
    running = true;
    try {
      await fn();
    } catch {
      /* fn shows its own errors */
    }
    running = false;
    schedule();
  };
  const schedule = () => {
    if (!stopped) timer = setTimeout(tick, typeof intervalMs === 'function' ? intervalMs() : intervalMs);
  };
  const onVisible = () => {
    if (!document.hidden && !running) {
      clearTimeout(timer);
      tick();
    }
  };
  document.addEventListener('visibilitychange', onVisible);
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener('visibilitychange', onVisible);
  };
}
