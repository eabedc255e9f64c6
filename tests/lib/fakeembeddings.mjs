/* SPDX-License-Identifier: Apache-2.0 */
// Fake OpenAI-compatible embeddings endpoint, FOR TESTS ONLY.
//
// A fault-injection HTTP server that stands in for `POST /v1/embeddings` (OpenAI,
// LiteLLM, Ollama, TEI) so that integration tests can run the worker with the
// "openai" embedder and make the endpoint slow, failing or wrong at will. It is not
// a model: vectors are derived from a hash of each input, so equal texts get equal
// vectors and different texts unrelated ones.
//
// The request body is validated: {"model": string, "input": string | [string, ...]}
// ("encoding_format" may only be "float"); anything else gets a 400 in OpenAI's error
// shape. Replies are {"object":"list","data":[{"object":"embedding","index":i,
// "embedding":[...dim floats, unit length]}],"model":...,"usage":{...}}.
//
// Modes (setMode(mode, {count, ms, retryAfter, status})); with a count, the mode answers
// the next `count` requests and then the server goes back to 'ok':
//   ok       -> 200 with the embeddings
//   down     -> the listening socket is closed: connections are refused (no count; any
//               other mode listens again on the same port)
//   ratelimit-> 429 with `Retry-After: retryAfter` (default 1; null sends none)
//   error    -> `status` (default 500)
//   slow     -> 200, but only after `ms` milliseconds (default 1000)
//   hang     -> the request is read but never answered (until close or a mode switch)
//   baddim   -> 200 with vectors of dim + 1 numbers
//   garbage  -> 200 with a body that is not JSON
// Any other method or path -> 404 JSON.

import crypto from 'node:crypto';
import { openaiError, readBody, sendJson as send, stubServer } from './httpstub.mjs';

const MODES = new Set(['ok', 'down', 'ratelimit', 'error', 'slow', 'hang', 'baddim', 'garbage']);
const MAX_BODY = 64 * 1024 * 1024;

/** A deterministic unit vector of dim numbers for text. */
export function fakeVector(text, dim) {
  const values = [];
  for (let block = 0; values.length < dim; block++) {
    const digest = crypto.createHash('sha256').update(`${block}\0${text}`).digest();
    for (let i = 0; i + 4 <= digest.length && values.length < dim; i += 4) {
      values.push(digest.readInt32BE(i) / 2 ** 31);
    }
  }
  const norm = Math.sqrt(values.reduce((s, x) => s + x * x, 0)) || 1;
  return values.map((x) => x / norm);
}

/** The "input" of a valid request body as an array of strings, or an error message. */
function validate(body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return 'body must be a JSON object';
  if (typeof body.model !== 'string' || body.model === '') return "'model' must be a non-empty string";
  if (body.encoding_format !== undefined && body.encoding_format !== 'float') {
    return "'encoding_format' must be 'float'";
  }
  const input = typeof body.input === 'string' ? [body.input] : body.input;
  if (!Array.isArray(input) || input.length === 0) return "'input' must be a string or a non-empty array";
  if (!input.every((s) => typeof s === 'string')) return "'input' must hold strings only";
  return input;
}

export async function startFakeEmbeddings({ dim = 16, dims = {}, port = 0 } = {}) {
  // dims: {model: dimension} for models other than the default's dim.
  const failing = new Set(); // models whose requests answer 500, whatever the mode
  let mode = 'ok';
  let left = Infinity; // requests the current mode still answers
  let opts = {};
  let count = 0;
  let lastAuthorization;
  const requests = []; // every counted request: {path, authorization, model, inputs}
  const timers = new Set();

  // The mode for the request arriving now; counts down a limited fault.
  const takeMode = () => {
    if (left <= 0) return 'ok';
    left--;
    return mode;
  };

  const answer = (res, current, model, input) => {
    if (failing.has(model)) {
      send(res, 500, openaiError(`model ${model} is failing`, 'server_error'));
    } else if (current === 'ratelimit') {
      const retryAfter = opts.retryAfter === undefined ? 1 : opts.retryAfter;
      const headers = retryAfter === null ? {} : { 'retry-after': String(retryAfter) };
      send(res, 429, openaiError('Rate limit reached', 'rate_limit_exceeded'), headers);
    } else if (current === 'error') {
      send(res, opts.status ?? 500, openaiError('The server had an error', 'server_error'));
    } else if (current === 'garbage') {
      send(res, 200, '{"data": [ {"embedding": not json');
    } else {
      const d = dims[model] ?? dim;
      const n = current === 'baddim' ? d + 1 : d;
      const tokens = input.reduce((s, t) => s + t.split(/\s+/).filter(Boolean).length, 0);
      send(res, 200, {
        object: 'list',
        data: input.map((text, index) => ({ object: 'embedding', index, embedding: fakeVector(text, n) })),
        model,
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      });
    }
  };

  const { server, listen, listenStable, unlisten, dropConnections } = stubServer((req, res) => {
    readBody(req, MAX_BODY, (raw) => {
      if (req.method !== 'POST' || req.url.split('?')[0] !== '/v1/embeddings') {
        send(res, 404, openaiError(`no route ${req.method} ${req.url}`, 'invalid_request_error'));
        return;
      }
      count++;
      lastAuthorization = req.headers.authorization;
      const record = { path: req.url, authorization: req.headers.authorization, model: undefined, inputs: 0 };
      requests.push(record);
      if (!raw) {
        send(res, 413, openaiError('request too large', 'invalid_request_error'));
        return;
      }
      let body;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        send(res, 400, openaiError('body is not valid JSON', 'invalid_request_error'));
        return;
      }
      const input = validate(body);
      record.model = body && body.model;
      record.inputs = Array.isArray(input) ? input.length : 0;
      if (!Array.isArray(input)) {
        send(res, 400, openaiError(input, 'invalid_request_error'));
        return;
      }
      const current = takeMode();
      if (current === 'hang') return; // never answered; the socket goes on close()
      if (current === 'slow') {
        const t = setTimeout(() => {
          timers.delete(t);
          if (!res.destroyed) answer(res, 'ok', body.model, input);
        }, opts.ms ?? 1000);
        t.unref();
        timers.add(t);
        return;
      }
      answer(res, current, body.model, input);
    });
  });
  // A port outside the ephemeral range, so that it stays ours while the server is down.
  const boundPort = await listenStable(port);

  return {
    /** Base URL as ALMANAC_EMBEDDINGS_URL takes it: http://127.0.0.1:PORT/v1 */
    get url() {
      return `http://127.0.0.1:${boundPort}/v1`;
    },
    get port() {
      return boundPort;
    },
    get dim() {
      return dim;
    },
    /** POST /v1/embeddings requests received so far, answered or not. */
    get count() {
      return count;
    },
    /** The Authorization header of the last request (undefined when it had none). */
    get lastAuthorization() {
      return lastAuthorization;
    },
    get mode() {
      return left > 0 ? mode : 'ok';
    },
    requests,
    /** Requests naming model answer 500 (failing true) or as the mode says (false). */
    failModel(model, on = true) {
      if (on) failing.add(model);
      else failing.delete(model);
    },
    /**
     * Switch mode, for the next opts.count requests (default: until switched again).
     * Resolves once in effect (the socket closed for 'down', listening again after it).
     */
    setMode(m, { count: k = Infinity, ms, retryAfter, status } = {}) {
      if (!MODES.has(m)) throw new Error(`unknown mode ${m}`);
      if (mode === 'hang' || mode === 'slow') {
        // Drop pending requests, so that clients see an error rather than a late answer.
        for (const t of timers) clearTimeout(t);
        timers.clear();
        dropConnections();
      }
      mode = m;
      left = m === 'down' ? Infinity : k;
      opts = { ms, retryAfter, status };
      if (m === 'down') return unlisten();
      return server.listening ? Promise.resolve() : listen(boundPort).then(() => undefined);
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await unlisten();
    },
  };
}
