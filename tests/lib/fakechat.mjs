/* SPDX-License-Identifier: Apache-2.0 */
// Fake OpenAI-compatible chat completions endpoint, FOR TESTS ONLY.
//
// Stands in for `POST /v1/chat/completions` (OpenAI, LiteLLM, Ollama, vLLM) and
// `GET /v1/models`, so that the integration tests, the browser test and the benchmark can
// run the answers API against a model that is slow, failing or cut off at will. It is not
// a model: its answers are extractive and deterministic. It reads the passages of
// Almanac's prompt ("[n] title\n<passage>\n...\n</passage>" blocks, then
// "Question: ..."), finds in each passage the sentence holding most of the question's
// words, and answers with that sentence of every passage that shares a word with the
// question (in prompt order), each followed by its [n]. Citing generously is on purpose:
// the grounding check over the evaluation set then measures what Almanac's side loses
// between search and citations (relevance floor, token budget, citation mapping), not
// the judgement of a model. Without passages in the prompt it says it cannot tell.
//
// The wire format follows OpenAI's chat completions contract: a request body is
// validated (model, messages with roles and string content, stream, stream_options only
// with stream, max_tokens, temperature) and refused with 400 in OpenAI's error shape;
// with "stream": true the answer is text/event-stream of `data: {chat.completion.chunk}`
// events (the first delta carries the role, content follows in small pieces, the last
// choice carries finish_reason, then with stream_options.include_usage a chunk with
// empty choices and the usage, every earlier chunk having "usage": null), ended by
// `data: [DONE]`; without it, one chat.completion object. tests/integration/answers
// checks this output with the official `openai` npm client (no machine-readable
// specification of this API is packaged on npm).
//
// Modes (setMode(mode, {count, ms, retryAfter, after})); with a count, the mode answers
// the next `count` chat requests and then the server goes back to 'ok':
//   ok        -> the extractive answer, streamed in pieces every `ms` ms (default 5)
//   slow      -> the same, after `ms` (default 1000) ms before the headers
//   ratelimit -> 429 with `Retry-After: retryAfter` (default 1; null sends none)
//   error     -> 500
//   hang      -> the request is read but never answered
//   cut       -> headers and `after` (default 2) content chunks, then the socket is destroyed
//   stall     -> headers and `after` chunks, then nothing more (the connection stays open)
//   badcite   -> the extractive answer plus a citation of a passage that was not given [99]
//   whole     -> a chat.completion object even when streaming was asked for
//
// requests records every chat request: {path, authorization, body, mode, at, closedAt},
// closedAt being when its connection closed (so a test sees an upstream request cancelled).

import { openaiError, readBody, sendJson as send, stubServer } from './httpstub.mjs';

const MODES = new Set(['ok', 'slow', 'ratelimit', 'error', 'hang', 'cut', 'stall', 'badcite', 'whole']);
const ROLES = new Set(['system', 'user', 'assistant', 'developer', 'tool']);
const MAX_BODY = 8 * 1024 * 1024;
const STOP = new Set(['the', 'and', 'for', 'are', 'how', 'what', 'when', 'where', 'which', 'who', 'why', 'does', 'did', 'can', 'you', 'your', 'with', 'that', 'this', 'from', 'have', 'has', 'get', 'our', 'was', 'were', 'will', 'would', 'should', 'could', 'not', 'any', 'many', 'much']);

/** An error message for an invalid request body, or null. */
export function validateChatRequest(b) {
  if (b === null || typeof b !== 'object' || Array.isArray(b)) return 'body must be a JSON object';
  if (typeof b.model !== 'string' || !b.model) return "'model' must be a non-empty string";
  if (!Array.isArray(b.messages) || b.messages.length === 0) return "'messages' must be a non-empty array";
  for (const [i, m] of b.messages.entries()) {
    if (!m || typeof m !== 'object') return `messages[${i}] must be an object`;
    if (!ROLES.has(m.role)) return `messages[${i}].role must be one of ${[...ROLES].join(', ')}`;
    if (typeof m.content !== 'string') return `messages[${i}].content must be a string`;
  }
  if (b.stream !== undefined && typeof b.stream !== 'boolean') return "'stream' must be a boolean";
  if (b.stream_options !== undefined) {
    if (b.stream !== true) return "'stream_options' is only allowed with stream: true";
    if (typeof b.stream_options !== 'object' || typeof (b.stream_options.include_usage ?? false) !== 'boolean') {
      return "'stream_options.include_usage' must be a boolean";
    }
  }
  for (const k of ['max_tokens', 'max_completion_tokens']) {
    if (b[k] !== undefined && !(Number.isInteger(b[k]) && b[k] > 0)) return `'${k}' must be a positive integer`;
  }
  if (b.temperature !== undefined && !(typeof b.temperature === 'number' && b.temperature >= 0 && b.temperature <= 2)) {
    return "'temperature' must be a number from 0 to 2";
  }
  return null;
}

const words = (s) => (s.toLowerCase().match(/[\p{L}\p{N}]{3,}/gu) || []).filter((w) => !STOP.has(w));

/** The passages and question of Almanac's prompt (the last user message). */
export function parsePrompt(messages) {
  const user = [...messages].reverse().find((m) => m.role === 'user');
  const text = user ? user.content : '';
  const passages = [];
  const re = /\[(\d+)\] [^\n]*\n<passage>\n([\s\S]*?)\n<\/passage>/g;
  for (let m; (m = re.exec(text)); ) passages.push({ n: Number(m[1]), text: m[2] });
  const q = /Question: ([\s\S]*?)\s*$/.exec(text);
  return { passages, question: q ? q[1] : text };
}

const score = (qwords, text) => {
  const t = text.toLowerCase();
  return qwords.filter((w) => t.includes(w.length > 5 ? w.slice(0, -2) : w)).length;
};

/** The deterministic extractive answer to messages. */
export function extractiveAnswer(messages) {
  const { passages, question } = parsePrompt(messages);
  const qw = [...new Set(words(question))];
  if (passages.length === 0) return 'I cannot tell from the documents.';
  // Each passage is as good as its best sentence: the one holding most question words.
  const scored = passages.map((p) => {
    const sentences = p.text.split(/(?<=[.!?])\s+|\n+/).filter((x) => x.trim());
    let top = sentences[0] || p.text;
    let s = -1;
    for (const x of sentences) {
      const sc = score(qw, x);
      if (sc > s) [top, s] = [x, sc];
    }
    return { ...p, top, s };
  });
  const best = Math.max(...scored.map((p) => p.s));
  if (best <= 0) return 'The documents do not answer this question.';
  const parts = scored.filter((p) => p.s > 0).map((p) => `${p.top.trim().replace(/\s+/g, ' ')} [${p.n}]`);
  return parts.join(' ');
}

const tokens = (s) => Math.max(1, Math.ceil(s.length / 4));

export async function startFakeChat({ port = 0, model = 'fake-chat' } = {}) {
  let mode = 'ok';
  let left = Infinity;
  let opts = {};
  const requests = []; // {path, authorization, body}
  const timers = new Set();
  const later = (ms, fn) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    t.unref();
    timers.add(t);
  };
  const takeMode = () => {
    if (left <= 0) return 'ok';
    left--;
    return mode;
  };
  let seq = 0;

  const answerText = (current, messages) => {
    let text = extractiveAnswer(messages);
    if (current === 'badcite') text += ' See also [99].';
    return text;
  };

  const stream = (req, res, current, body) => {
    const id = `chatcmpl-fake${++seq}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = body.stream_options && body.stream_options.include_usage;
    const chunk = (delta, finish = null) => {
      const c = { id, object: 'chat.completion.chunk', created, model: body.model, system_fingerprint: null, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
      if (usage) c.usage = null;
      return `data: ${JSON.stringify(c)}\n\n`;
    };
    const text = answerText(current, body.messages);
    const pieces = text.match(/\S+\s*|\s+/g) || [text];
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
    res.write(chunk({ role: 'assistant', content: '' }));
    let i = 0;
    const after = opts.after ?? 2;
    const step = () => {
      if (res.destroyed) return;
      if ((current === 'cut' || current === 'stall') && i >= after) {
        if (current === 'cut') res.socket.destroy();
        return; // stall: the connection stays open, nothing more is sent
      }
      if (i < pieces.length) {
        res.write(chunk({ content: pieces[i++] }));
        later(current === 'slow' ? 5 : opts.ms ?? 5, step);
        return;
      }
      res.write(chunk({}, 'stop'));
      if (usage) {
        const prompt = tokens(body.messages.map((m) => m.content).join('\n'));
        const completion = tokens(text);
        res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, system_fingerprint: null, choices: [], usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion } })}\n\n`);
      }
      res.end('data: [DONE]\n\n');
    };
    step();
  };

  const whole = (res, current, body) => {
    const text = answerText(current, body.messages);
    const prompt = tokens(body.messages.map((m) => m.content).join('\n'));
    const completion = tokens(text);
    send(res, 200, {
      id: `chatcmpl-fake${++seq}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: body.model,
      system_fingerprint: null,
      choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
    });
  };

  const { listen, unlisten, dropConnections } = stubServer((req, res) => {
    readBody(req, MAX_BODY, (raw) => {
      const path = req.url.split('?')[0];
      if (req.method === 'GET' && path === '/v1/models') {
        send(res, 200, { object: 'list', data: [{ id: model, object: 'model', created: 0, owned_by: 'almanac-tests' }] });
        return;
      }
      if (req.method !== 'POST' || path !== '/v1/chat/completions') {
        send(res, 404, openaiError(`no route ${req.method} ${req.url}`, 'invalid_request_error'));
        return;
      }
      const record = { path, authorization: req.headers.authorization, body: undefined, at: Date.now(), closedAt: null };
      requests.push(record);
      res.on('close', () => {
        record.closedAt = Date.now();
      });
      if (!raw) return send(res, 413, openaiError('request too large', 'invalid_request_error'));
      let body;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return send(res, 400, openaiError('body is not valid JSON', 'invalid_request_error'));
      }
      record.body = body;
      const bad = validateChatRequest(body);
      if (bad) return send(res, 400, openaiError(bad, 'invalid_request_error'));
      const current = takeMode();
      record.mode = current;
      if (current === 'hang') return;
      if (current === 'ratelimit') {
        const ra = opts.retryAfter === undefined ? 1 : opts.retryAfter;
        return send(res, 429, openaiError('Rate limit reached', 'requests', 'rate_limit_exceeded'), ra === null ? {} : { 'retry-after': String(ra) });
      }
      if (current === 'error') return send(res, 500, openaiError('The server had an error', 'server_error'));
      const go = () => {
        if (res.destroyed) return;
        if (body.stream && current !== 'whole') stream(req, res, current, body);
        else whole(res, current, body);
      };
      if (current === 'slow') later(opts.ms ?? 1000, go);
      else go();
    });
  });
  const boundPort = await listen(port);

  return {
    /** Base URL as ALMANAC_LLM_URL takes it: http://127.0.0.1:PORT/v1 */
    url: `http://127.0.0.1:${boundPort}/v1`,
    port: boundPort,
    model,
    requests,
    get count() {
      return requests.length;
    },
    get mode() {
      return left > 0 ? mode : 'ok';
    },
    setMode(m, { count = Infinity, ms, retryAfter, after } = {}) {
      if (!MODES.has(m)) throw new Error(`unknown mode ${m}`);
      for (const t of timers) clearTimeout(t);
      timers.clear();
      dropConnections();
      mode = m;
      left = count;
      opts = { ms, retryAfter, after };
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await unlisten();
    },
  };
}
