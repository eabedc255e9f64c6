/* SPDX-License-Identifier: Apache-2.0 */
// The api client: one origin (nginx proxies /api/), bearer token kept in sessionStorage
// (never in a URL), errors in the api's shape turned into ApiError with a readable message.

const STORE_KEY = 'almanac.session';
let session = loadSession();
let onExpired = () => {};

export class ApiError extends Error {
  constructor(status, code, message, { retryAfter = null, requestId = null, body = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.requestId = requestId;
    this.body = body;
  }
}

function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(STORE_KEY) || 'null');
    if (s && s.token && s.expiresAt > Date.now()) return s;
  } catch {
    /* no storage or bad JSON: signed out */
  }
  return null;
}

export function getSession() {
  if (session && session.expiresAt <= Date.now()) {
    endSession();
    onExpired('expired');
  }
  return session;
}

export function setExpiredHandler(fn) {
  onExpired = fn;
}

export function endSession() {
  session = null;
  try {
    sessionStorage.removeItem(STORE_KEY);
  } catch {
    /* ignore */
  }
}

function saveSession(s) {
  session = s;
  try {
    sessionStorage.setItem(STORE_KEY, JSON.stringify(s));
  } catch {
    /* memory only */
  }
}

/** "3 minutes" from a Retry-After value in seconds. */
export function waitText(seconds) {
  // The largest number in the header: an answer may carry more than one Retry-After.
  const all = String(seconds ?? '').match(/\d+/g) || [];
  const s = all.length ? Math.max(...all.map(Number)) : NaN;
  if (!Number.isFinite(s) || s <= 0) return 'a moment';
  if (s < 60) return `${Math.ceil(s)} second${Math.ceil(s) === 1 ? '' : 's'}`;
  const m = Math.ceil(s / 60);
  return `${m} minute${m === 1 ? '' : 's'}`;
}

function parseBody(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function toError(status, body, headers) {
  const e = body && body.error ? body.error : {};
  const retryAfter = headers('Retry-After');
  let message = e.message || `The server answered ${status}.`;
  if (status === 503) message = 'The service is temporarily unavailable. Try again in a moment.';
  if (status === 429) message = `Too many attempts. Try again in ${waitText(retryAfter)}.`;
  if (status >= 500 && status !== 503) message = 'The server ran into a problem. Try again in a moment.';
  return new ApiError(status, e.code || `http_${status}`, message, {
    retryAfter,
    requestId: e.request_id || headers('X-Request-Id'),
    body,
  });
}

function networkError() {
  return new ApiError(0, 'network', 'Cannot reach the server. Check your connection and try again.');
}

/** What every api request sets: never a cached answer, no cookies, no redirects. */
const API_FETCH = { cache: 'no-store', credentials: 'omit', redirect: 'error' };

/** fetch(), with a failure to reach the server as ApiError 'network' (an abort stays one). */
async function send(path, init) {
  try {
    return await fetch(path, init);
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw networkError();
  }
}

function sessionLost(status) {
  if (status === 401 && session) {
    endSession();
    onExpired('expired');
  }
}

/** JSON call to the api. Resolves the parsed body; rejects with ApiError. */
export async function call(method, path, { json, signal, auth = true } = {}) {
  const headers = { Accept: 'application/json' };
  if (json !== undefined) headers['Content-Type'] = 'application/json';
  if (auth) {
    const s = getSession();
    if (!s) throw new ApiError(401, 'unauthorized', 'Your session has ended. Sign in again.');
    headers.Authorization = `Bearer ${s.token}`;
  }
  const res = await send(path, {
    ...API_FETCH,
    method,
    headers,
    body: json === undefined ? undefined : JSON.stringify(json),
    signal,
  });
  const body = parseBody(await res.text());
  if (!res.ok) {
    if (auth) sessionLost(res.status);
    throw toError(res.status, body, (n) => res.headers.get(n));
  }
  return body;
}

/** All pages of a list (`key` holds the items), at most maxPages of 100. */
export async function listAll(path, key, { signal, maxPages = 10 } = {}) {
  const items = [];
  let cursor = null;
  for (let i = 0; i < maxPages; i++) {
    const sep = path.includes('?') ? '&' : '?';
    const url = `${path}${sep}limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page = await call('GET', url, { signal });
    items.push(...(page[key] || []));
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return items;
}

export async function signIn(email, password) {
  let body;
  try {
    body = await call('POST', '/api/v1/auth/login', { json: { email, password }, auth: false });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) e.message = 'Wrong email or password.';
    if (e instanceof ApiError && e.status === 429) {
      e.message = `Too many failed sign-ins. Try again in ${waitText(e.retryAfter)}.`;
    }
    throw e;
  }
  saveSession({
    token: body.access_token,
    expiresAt: Date.now() + Math.max(0, Number(body.expires_in) - 5) * 1000,
    user: body.user,
  });
  return session;
}

/** The api's readiness through nginx's /api/ready: {httpStatus, body} (503 has a body too). */
export async function readiness({ signal } = {}) {
  const res = await send('/api/ready', { headers: { Accept: 'application/health+json' }, signal, cache: 'no-store' });
  return { httpStatus: res.status, body: parseBody(await res.text()) };
}

/**
 * Uploads one file as multipart/form-data with progress (fetch has no upload progress).
 * onProgress(loaded, total). Resolves the document; rejects with ApiError.
 */
export function uploadFile(kbId, file, { onProgress, signal } = {}) {
  return new Promise((resolve, reject) => {
    const s = getSession();
    if (!s) {
      reject(new ApiError(401, 'unauthorized', 'Your session has ended. Sign in again.'));
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/v1/knowledge-bases/${encodeURIComponent(kbId)}/documents`);
    xhr.setRequestHeader('Authorization', `Bearer ${s.token}`);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.addEventListener('progress', (ev) => {
      if (onProgress) onProgress(ev.loaded, ev.lengthComputable ? ev.total : file.size);
    });
    xhr.addEventListener('load', () => {
      const body = parseBody(xhr.responseText);
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else {
        sessionLost(xhr.status);
        reject(toError(xhr.status, body, (n) => xhr.getResponseHeader(n)));
      }
    });
    xhr.addEventListener('error', () =>
      reject(new ApiError(0, 'network', 'The upload was interrupted. The file may be larger than the server accepts, or the connection dropped.')),
    );
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'aborted', 'Upload cancelled.')));
    if (signal) signal.addEventListener('abort', () => xhr.abort());
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
}

/**
 * POSTs json and reads the answer as Server-Sent Events: onEvent(name, data) for each.
 * Resolves when the stream ends; rejects with ApiError (or AbortError when signal fires).
 */
export async function stream(path, json, { signal, onEvent }) {
  const s = getSession();
  if (!s) throw new ApiError(401, 'unauthorized', 'Your session has ended. Sign in again.');
  const res = await send(path, {
    ...API_FETCH,
    method: 'POST',
    headers: { Accept: 'text/event-stream', 'Content-Type': 'application/json', Authorization: `Bearer ${s.token}` },
    body: JSON.stringify(json),
    signal,
  });
  if (!res.ok) {
    sessionLost(res.status);
    const err = toError(res.status, parseBody(await res.text()), (n) => res.headers.get(n));
    if (res.status === 429) err.message = `You have asked many questions in a short time. Try again in ${waitText(err.retryAfter)}.`;
    throw err;
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      const blocks = buf.split(/\r\n\r\n|\n\n/);
      buf = blocks.pop();
      for (const block of blocks) {
        let name = 'message';
        const data = [];
        for (const line of block.split(/\r\n|\n/)) {
          if (line.startsWith('event:')) name = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length) onEvent(name, parseBody(data.join('\n')));
      }
    }
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'The answer was cut off. Check your connection and try again.');
  }
}
