/* SPDX-License-Identifier: Apache-2.0 */
// A small client of the Almanac api for tests: sign-in, knowledge bases, multipart
// uploads, documents and search; and the code-point slices its chunk offsets address.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import { httpRequest, waitFor } from './almanac.mjs';

/** The password of every user the test stacks create. */
export const PASSWORD = 'correct-horse-battery';

/** A multipart/form-data body of fields ({name, data, filename?, type?}). */
export function multipart(fields) {
  const boundary = `----almanac${crypto.randomBytes(8).toString('hex')}`;
  const parts = [];
  for (const f of fields) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${f.name}"`;
    if (f.filename) head += `; filename="${f.filename}"`;
    head += '\r\n';
    if (f.type) head += `Content-Type: ${f.type}\r\n`;
    parts.push(Buffer.from(`${head}\r\n`), Buffer.isBuffer(f.data) ? f.data : Buffer.from(f.data), Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** A client of one api: call(method, path, {token, json, body, headers}). */
export function client(api) {
  const call = (method, p, { token, json, body, headers = {}, timeoutMs } = {}) => {
    const h = { ...headers };
    if (token) h.Authorization = `Bearer ${token}`;
    let payload = body;
    if (json !== undefined) {
      payload = JSON.stringify(json);
      h['Content-Type'] = 'application/json';
    }
    if (payload !== undefined) h['Content-Length'] = Buffer.byteLength(payload);
    return httpRequest(`${api.url}${p}`, { method, headers: h, body: payload, timeoutMs });
  };
  const must = (r, status, what) => {
    assert.equal(r.status, status, `${what}: HTTP ${r.status} ${r.body}`);
    return r.json;
  };
  return {
    call,
    async login(email, password = PASSWORD) {
      return must(await call('POST', '/api/v1/auth/login', { json: { email, password } }), 200, 'login').access_token;
    },
    async createKb(token, name) {
      return must(await call('POST', '/api/v1/knowledge-bases', { token, json: { name } }), 201, 'create kb');
    },
    upload(token, kb, filename, data, { type = 'text/plain', title } = {}) {
      const fields = [{ name: 'file', filename, type, data }];
      if (title) fields.push({ name: 'title', data: title });
      const mp = multipart(fields);
      return call('POST', `/api/v1/knowledge-bases/${kb}/documents`, {
        token,
        body: mp.body,
        headers: { 'Content-Type': mp.contentType },
      });
    },
    search(token, body, opts = {}) {
      return call('POST', '/api/v1/search', { token, json: body, ...opts });
    },
    async document(token, id) {
      return must(await call('GET', `/api/v1/documents/${id}`, { token }), 200, `document ${id}`);
    },
    /** Waits until every id is ready (throws when one fails or time runs out). */
    async waitReady(token, ids, { timeoutMs = 120000 } = {}) {
      const left = new Set(ids);
      const docs = new Map();
      await waitFor(
        async () => {
          for (const id of [...left]) {
            const d = await this.document(token, id);
            if (d.status === 'failed') throw new Error(`document ${id} failed: ${d.error}`);
            if (d.status === 'ready') {
              left.delete(id);
              docs.set(id, d);
            }
          }
          return left.size === 0;
        },
        { timeoutMs, intervalMs: 100, what: `documents ready (left: ${[...left].join(',')})` },
      );
      return docs;
    },
  };
}

/** Code-point slice of text (offsets of chunks are code points of documents.text). */
export function cpSlice(text, start, end) {
  return Array.from(text).slice(start, end).join('');
}
