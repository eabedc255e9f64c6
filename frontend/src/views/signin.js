/* SPDX-License-Identifier: Apache-2.0 */
// Sign-in: email and password, clear messages for wrong credentials, rate limiting and an
// expired session.
import { signIn, ApiError } from '../api.js';
import { h } from '../dom.js';
import { flashMessage, messageSlot } from './common.js';

export function renderSignIn(root, { flash, navigate }) {
  const msg = messageSlot();
  const email = h('input', { id: 'signin-email', name: 'email', type: 'email', autocomplete: 'username', required: true });
  const password = h('input', {
    id: 'signin-password',
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const submit = h('button', { type: 'submit', class: 'button primary wide' }, 'Sign in');
  const form = h(
    'form',
    { class: 'signin-form', novalidate: true, 'aria-describedby': 'signin-messages' },
    h('div', { class: 'field' }, h('label', { for: 'signin-email' }, 'Email'), email),
    h('div', { class: 'field' }, h('label', { for: 'signin-password' }, 'Password'), password),
    submit,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    msg.clear();
    if (!email.value.trim() || !password.value) {
      msg.show('error', 'Enter your email and password.');
      (email.value.trim() ? password : email).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    try {
      await signIn(email.value.trim(), password.value);
      navigate('/');
    } catch (e) {
      msg.show('error', e instanceof ApiError ? e.message : 'Sign-in failed. Try again.');
      password.value = '';
      password.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = 'Sign in';
    }
  });
  root.append(
    h(
      'section',
      { class: 'signin card', 'aria-labelledby': 'signin-title' },
      h('div', { class: 'signin-brand', 'aria-hidden': 'true' }, h('span', { class: 'brand-mark' }), 'Almanac'),
      h('h1', { id: 'signin-title' }, 'Sign in'),
      h('p', { class: 'muted' }, 'Your documents, searchable by keyword and by meaning.'),
      h('div', { id: 'signin-messages' }, flashMessage(flash), msg.el),
      form,
    ),
  );
  setTimeout(() => email.focus(), 0);
}
