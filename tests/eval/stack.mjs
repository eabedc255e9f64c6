/* SPDX-License-Identifier: Apache-2.0 */
// The whole ingestion and search stack for tests, the evaluation and the benchmarks:
// PostgreSQL, Redis, the Qdrant stand-in (optional), `almanac api` and `almanac worker`,
// plus a small API client (sign-in, knowledge bases, uploads, search) and psql access.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startPostgres, startRedis } from '../lib/services.mjs';
import { startAlmanac, startProbed, migrate, createUser, httpRequest, waitFor } from '../lib/almanac.mjs';
import { startQdrantStandin } from '../lib/qdrant-standin.mjs';
import { makePdfFromText, makeDocxFromText } from '../lib/docmakers.mjs';

const EVAL_DIR = path.dirname(fileURLToPath(import.meta.url));
const CORPUS_TYPES = { '.md': 'text/markdown', '.txt': 'text/plain', '.html': 'text/html' };

/** The bytes and declared type of a document of questions.json: a corpus file, or one made
 * at run time by a real producer (ghostscript for PDF, npm's docx for DOCX) from a text
 * whose form feeds are pages. */
export async function corpusDocument(d) {
  const type = CORPUS_TYPES[path.extname(d.file)] ?? 'application/octet-stream';
  if (!d.make) return { data: fs.readFileSync(path.join(EVAL_DIR, 'corpus', d.file)), type };
  const text = fs.readFileSync(path.join(EVAL_DIR, d.source), 'utf8');
  const data = d.make === 'pdf' ? await makePdfFromText(text, { title: d.title }) : await makeDocxFromText(text, { title: d.title });
  return { data, type };
}

/** Code-point range [start, end) of passage in text, or null; a PDF's line breaks
 * may stand where the passage has spaces. */
export function locate(text, passage) {
  const words = passage.split(/\s+/).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const m = new RegExp(words.join('\\s+')).exec(text);
  if (!m) return null;
  const start = Array.from(text.slice(0, m.index)).length;
  return { start, end: start + Array.from(m[0]).length };
}

export const JWT_SECRET = 'search-tests-jwt-secret-0123456789abcdef';
export const PASSWORD = 'correct-horse-battery';

/** psql -At: the output, trimmed. */
export function sql(pg, query) {
  return execFileSync('psql', [pg.url, '-XAtqc', query], { encoding: 'utf8', maxBuffer: 256 << 20 }).trim();
}

/** Rows of a query as objects (via row_to_json). */
export function sqlRows(pg, query) {
  const out = sql(pg, `SELECT coalesce(json_agg(r), '[]') FROM (${query}) r`);
  return JSON.parse(out);
}

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
      ).catch((e) => {
        // a failed document is final: say so rather than "timed out"
        throw e;
      });
      return docs;
    },
  };
}

/**
 * The settings of every almanac process of a stack: its PostgreSQL, Redis and Qdrant
 * (q, or none), a short readiness cache and retry base, no shutdown delay; then extra.
 */
export function stackEnv(pg, redis, q, extra = {}) {
  return {
    ALMANAC_DATABASE_URL: pg.url,
    ALMANAC_REDIS_URL: redis.url,
    ALMANAC_JWT_SECRET: JWT_SECRET,
    ALMANAC_READY_REQUIRED: q ? 'postgres,redis,qdrant' : 'postgres,redis',
    ALMANAC_READY_CACHE_MS: '200',
    ALMANAC_SHUTDOWN_DELAY_MS: '0',
    ALMANAC_JOB_RETRY_BASE_MS: '200',
    ALMANAC_LOG_LEVEL: 'info',
    ...(q ? { ALMANAC_QDRANT_URL: q.url } : {}),
    ...extra,
  };
}

/**
 * Starts PostgreSQL and Redis, migrates, creates users; then the api and the worker.
 * Options: qdrant (true: a fresh stand-in; an object: that stand-in; false: none),
 * env (extra settings for both), workerEnv, apiEnv, users (emails; the first is admin-less).
 */
export async function startStack({ qdrant = true, env = {}, apiEnv = {}, workerEnv = {}, users = ['alice@example.org'], worker = true } = {}) {
  const pg = await startPostgres();
  const redis = await startRedis();
  const q = qdrant === true ? await startQdrantStandin() : qdrant || null;
  const common = stackEnv(pg, redis, q, env);
  await migrate(common);
  for (const email of users) await createUser(common, email, PASSWORD);
  const api = await startAlmanac(['api'], { env: { ...common, ...apiEnv } });
  const stack = { pg, redis, qdrant: q, env: common, api, worker: null, c: client(api) };
  stack.startWorker = async (extra = {}) => {
    const w = await startProbed('worker', { ...common, ...workerEnv, ...extra }, { healthRequestMs: 1000 });
    stack.worker = w;
    return w;
  };
  if (worker) await stack.startWorker();
  stack.stop = async () => {
    if (stack.worker) await stack.worker.stop();
    await api.stop();
    if (q && qdrant === true) await q.close();
    await redis.stop();
    await pg.stop();
  };
  return stack;
}

/** Code-point slice of text (offsets of chunks are code points of documents.text). */
export function cpSlice(text, start, end) {
  return Array.from(text).slice(start, end).join('');
}
