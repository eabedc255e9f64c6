/* SPDX-License-Identifier: Apache-2.0 */
// Almanac's web frontend: a hash router over a few views, a header with navigation and
// the signed-in user. Each view renders into <main> and returns its cleanup (timers,
// pending requests), run when the route changes.
import './styles.css';
import { getSession, endSession, setExpiredHandler } from './api.js';
import { h, clear } from './dom.js';
import { renderSignIn } from './views/signin.js';
import { renderKnowledgeBases } from './views/kbs.js';
import { renderKnowledgeBase } from './views/kb.js';
import { renderSearch } from './views/search.js';
import { renderAsk } from './views/ask.js';
import { renderOperations } from './views/ops.js';

const main = document.getElementById('main');
const header = document.getElementById('app-header');
let cleanup = null;
let flash = null; // a message for the next view (e.g. "session expired")

const routes = [
  { re: /^\/signin$/, view: renderSignIn, public: true },
  { re: /^\/$/, view: renderKnowledgeBases, nav: 'kbs', title: 'Knowledge bases' },
  { re: /^\/kb\/(\d+)$/, view: renderKnowledgeBase, nav: 'kbs', title: 'Knowledge base' },
  { re: /^\/search$/, view: renderSearch, nav: 'search', title: 'Search' },
  { re: /^\/ask$/, view: renderAsk, nav: 'ask', title: 'Ask' },
  { re: /^\/operations$/, view: renderOperations, nav: 'ops', title: 'Operations', admin: true },
];

export function navigate(path) {
  if (location.hash === `#${path}`) route();
  else location.hash = `#${path}`;
}

function currentPath() {
  const p = location.hash.replace(/^#/, '');
  return p.startsWith('/') ? p.split('?')[0] : '/';
}

function renderHeader(active) {
  const s = getSession();
  clear(header);
  if (!s) {
    header.hidden = true;
    return;
  }
  header.hidden = false;
  const link = (href, label, key) =>
    h('a', { href: `#${href}`, class: 'nav-link', 'aria-current': active === key ? 'page' : null }, label);
  const signOut = h('button', { type: 'button', class: 'button subtle' }, 'Sign out');
  signOut.addEventListener('click', () => {
    endSession();
    flash = { kind: 'info', text: 'You are signed out.' };
    navigate('/signin');
  });
  header.append(
    h('a', { href: '#/', class: 'brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'Almanac'),
    h(
      'nav',
      { 'aria-label': 'Main' },
      h(
        'ul',
        {},
        h('li', {}, link('/', 'Knowledge bases', 'kbs')),
        h('li', {}, link('/search', 'Search', 'search')),
        h('li', {}, link('/ask', 'Ask', 'ask')),
        s.user && s.user.role === 'admin' ? h('li', {}, link('/operations', 'Operations', 'ops')) : null,
      ),
    ),
    h(
      'div',
      { class: 'user' },
      h('span', { class: 'user-email', title: s.user ? s.user.email : '' }, s.user ? s.user.email : ''),
      s.user && s.user.role === 'admin' ? h('span', { class: 'badge' }, 'admin') : null,
      signOut,
    ),
  );
}

function route() {
  if (cleanup) {
    try {
      cleanup();
    } catch {
      /* a view's cleanup must not break navigation */
    }
    cleanup = null;
  }
  const path = currentPath();
  const s = getSession();
  let match = null;
  let r = routes.find((x) => (match = path.match(x.re)));
  if (!r) {
    navigate(s ? '/' : '/signin');
    return;
  }
  if (!r.public && !s) {
    navigate('/signin');
    return;
  }
  if (r.public && s) {
    navigate('/');
    return;
  }
  if (r.admin && !(s.user && s.user.role === 'admin')) {
    flash = { kind: 'error', text: 'The operations view is for administrators.' };
    navigate('/');
    return;
  }
  renderHeader(r.nav);
  clear(main);
  const f = flash;
  flash = null;
  document.title = r.title ? `${r.title} · Almanac` : 'Almanac';
  cleanup = r.view(main, { params: match.slice(1), flash: f, navigate, setFlash }) || null;
  // Move focus to the new view's heading, for keyboard and screen reader users.
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
  window.scrollTo(0, 0);
}

setExpiredHandler(() => {
  // Shown as an alert on the sign-in screen (read out by screen readers there).
  flash = { kind: 'error', text: 'Your session has expired. Sign in again.' };
  navigate('/signin');
});

/** Lets a view say "open this path with this message" (handed to views with navigate). */
function setFlash(f) {
  flash = f;
}

// The skip link must not change the hash (the router owns it): focus <main> instead.
document.querySelector('.skip-link')?.addEventListener('click', (ev) => {
  ev.preventDefault();
  const target = main.querySelector('h1') || main;
  target.focus();
});

window.addEventListener('hashchange', route);
route();
