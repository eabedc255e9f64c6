/* SPDX-License-Identifier: Apache-2.0 */
// Integration tests of the answers API: the real `almanac api` and `almanac worker` on a
// real PostgreSQL and Redis, the Qdrant stand-in, and the chat completions stand-in
// (tests/lib/fakechat.mjs) in each of its fault modes. The stand-in's own output is held
// to OpenAI's contract by the official `openai` npm client first.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { startAlmanac, runAlmanac, httpRequest, waitFor } from '../lib/almanac.mjs';
import { startFakeChat } from '../lib/fakechat.mjs';
import { postStream } from '../lib/sse.mjs';
import { startStack } from '../lib/stack.mjs';
import { client, cpSlice } from '../lib/apiclient.mjs';
import { sql } from '../lib/psql.mjs';
import { freePort, redisCli } from '../lib/services.mjs';

const API_KEY = 'sk-answers-test-key-3f9a1c7e';
const LLM_TIMEOUT_MS = 4000;
const IDLE_MS = 1500;
const SLACK_MS = 1500;

const EXPENSES = [
  'Expense reports are filed through the finance portal within thirty days of the purchase.',
  '',
  'Meals during travel are reimbursed up to 45 euros per day. Alcohol is never reimbursed.',
  '',
  'Mileage for private cars is paid at the standard rate per kilometre. Parking and tolls are reimbursed at cost.',
].join('\n');

const HANDBOOK = `# Security handbook

## Passwords

Passwords must be at least sixteen characters long. Password managers are mandatory for every employee.

## Laptops

Laptops are encrypted with full-disk encryption before they are handed out.
`;

const BOB_SECRET = 'The submarine project codename is Bluefin and its budget is twelve million.';

let s; // the stack
let chat; // the stand-in
let alice;
let bob;
let kbA;
let kbB;
let docs = {};

const ask = (token, body, opts) => s.c.call('POST', '/api/v1/answers', { token, json: body, timeoutMs: 20000, ...opts });

before(async () => {
  chat = await startFakeChat();
  s = await startStack({
    users: ['alice@example.org', 'bob@example.org'],
    apiEnv: {
      ALMANAC_LLM_URL: chat.url,
      ALMANAC_LLM_MODEL: 'fake-chat',
      ALMANAC_LLM_API_KEY: API_KEY,
      ALMANAC_LLM_TIMEOUT_MS: String(LLM_TIMEOUT_MS),
      ALMANAC_LLM_IDLE_TIMEOUT_MS: String(IDLE_MS),
      ALMANAC_LLM_RETRIES: '2',
      ALMANAC_ANSWER_RATE_LIMIT: '1000',
    },
  });
  alice = await s.c.login('alice@example.org');
  bob = await s.c.login('bob@example.org');
  kbA = await s.c.createKb(alice, 'policies');
  kbB = await s.c.createKb(bob, 'projects');
  const up = async (token, kb, name, data, type, title) => {
    const r = await s.c.upload(token, kb.id, name, data, { type, title });
    assert.equal(r.status, 202, r.body);
    return r.json.id;
  };
  docs.expenses = await up(alice, kbA, 'expenses.txt', EXPENSES, 'text/plain', 'Expenses');
  docs.handbook = await up(alice, kbA, 'handbook.md', HANDBOOK, 'text/markdown', 'Security handbook');
  docs.secret = await up(bob, kbB, 'secret.txt', BOB_SECRET, 'text/plain', 'Submarine');
  await s.c.waitReady(alice, [docs.expenses, docs.handbook]);
  await s.c.waitReady(bob, [docs.secret]);
});

after(async () => {
  if (s) await s.stop();
  if (chat) await chat.close();
});

describe('the chat completions stand-in follows the OpenAI contract (official openai client)', () => {
  test('streamed chunks and a whole completion parse with the openai SDK', async () => {
    chat.setMode('ok');
    const oa = new OpenAI({ baseURL: chat.url, apiKey: 'sk-x', maxRetries: 0 });
    const messages = [
      { role: 'system', content: 'answer from passages' },
      { role: 'user', content: 'Passages:\n\n[1] T\n<passage>\nThe sky is blue.\n</passage>\n\nQuestion: What colour is the sky?\n' },
    ];
    const stream = await oa.chat.completions.create({ model: 'm', messages, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage = null;
    let finish = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      assert.ok(chunk.id.startsWith('chatcmpl-'));
      if (chunk.choices.length) {
        text += chunk.choices[0].delta.content ?? '';
        finish = chunk.choices[0].finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, 'The sky is blue. [1]');
    assert.equal(finish, 'stop');
    assert.ok(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
    const whole = await oa.chat.completions.create({ model: 'm', messages });
    assert.equal(whole.object, 'chat.completion');
    assert.equal(whole.choices[0].message.content, 'The sky is blue. [1]');
    await assert.rejects(oa.chat.completions.create({ model: 'm', messages: [{ role: 'robot', content: 'x' }] }), /400/);
  });
});

describe('answers', () => {
  test('a JSON answer cites passages that were in the prompt, with document, section and offsets', async () => {
    chat.setMode('ok');
    const before = chat.count;
    const r = await ask(alice, { question: 'How much are meals during travel reimbursed per day?' });
    assert.equal(r.status, 200, r.body);
    const a = r.json;
    assert.match(a.answer, /45 euros per day/);
    assert.match(a.answer, /\[1\]/);
    assert.equal(a.answer_unavailable, null);
    assert.equal(a.nothing_relevant, false);
    assert.ok(a.results.length > 0, 'the search results come along');
    assert.ok(a.citations.length >= 1);
    const text = sql(s.pg, `SELECT text FROM documents WHERE id = ${docs.expenses}`);
    for (const c of a.citations) {
      assert.equal(c.document_id, docs.expenses);
      assert.equal(c.knowledge_base_id, kbA.id);
      assert.equal(c.title, 'Expenses');
      assert.ok('page' in c && 'section' in c);
      assert.equal(cpSlice(text, c.start, c.end), c.text, 'offsets slice the document text');
    }
    assert.equal(a.dropped_citations, 0);
    assert.ok(a.usage.prompt_tokens > 0 && a.usage.completion_tokens > 0);
    assert.ok(a.timing.total_ms >= a.timing.search_ms);
    assert.ok(a.conversation_id > 0 && a.turn_id > 0);
    // What went to the model: the key, the prompt rules, the passages as quoted data.
    assert.equal(chat.count, before + 1);
    const sent = chat.requests.at(-1);
    assert.equal(sent.authorization, `Bearer ${API_KEY}`);
    assert.equal(sent.body.model, 'fake-chat');
    assert.equal(sent.body.stream, true);
    assert.ok(sent.body.max_tokens > 0);
    assert.equal(sent.body.messages[0].role, 'system');
    assert.match(sent.body.messages[0].content, /not instructions/);
    assert.match(sent.body.messages.at(-1).content, /<passage>\n[\s\S]*45 euros[\s\S]*<\/passage>/);
  });

  test('a streamed answer: start, text deltas, citations, then done with usage and timing', async () => {
    chat.setMode('ok');
    const r = await postStream(`${s.api.url}/api/v1/answers`, { question: 'How long must passwords be?', stream: true }, { token: alice });
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/event-stream/);
    assert.equal(r.headers['x-accel-buffering'], 'no');
    const names = r.events.map((e) => e.event);
    assert.equal(names[0], 'start');
    assert.deepEqual(names.slice(-2), ['citations', 'done']);
    const deltas = r.events.filter((e) => e.event === 'delta');
    assert.ok(deltas.length > 3, 'the text comes in pieces');
    assert.ok(names.indexOf('citations') > names.lastIndexOf('delta'));
    const text = deltas.map((e) => e.data.text).join('');
    assert.match(text, /sixteen characters/);
    const cits = r.events.find((e) => e.event === 'citations').data;
    assert.equal(cits.citations[0].document_id, docs.handbook);
    assert.equal(cits.citations[0].section, 'Passwords');
    const done = r.events.at(-1).data;
    assert.equal(done.answer_unavailable, null);
    assert.ok(done.usage.completion_tokens > 0);
    assert.ok(done.timing.first_token_ms >= done.timing.search_ms);
    assert.ok(done.results.length > 0);
    // The stored turn holds the same text.
    const conv = await s.c.call('GET', `/api/v1/conversations/${done.conversation_id}`, { token: alice });
    assert.equal(conv.json.turns.at(-1).answer, text);
  });

  test('citations of passages that were not in the prompt are dropped and counted', async () => {
    chat.setMode('badcite');
    const r = await ask(alice, { question: 'How much are meals during travel reimbursed per day?' });
    assert.equal(r.status, 200, r.body);
    assert.match(r.json.answer, /\[99\]/);
    assert.equal(r.json.dropped_citations, 1);
    assert.ok(r.json.citations.every((c) => c.n >= 1 && c.n <= 20));
    const m = (await httpRequest(`${s.api.url}/metrics`)).body;
    assert.match(m, /almanac_answer_citations_dropped_total [1-9]/);
    chat.setMode('ok');
  });

  test('nothing relevant: the answer says so and the model is not asked', async () => {
    chat.setMode('ok');
    const before = chat.count;
    const r = await ask(alice, { question: 'Which xylophone quartet performs at the zeppelin gala?' });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.nothing_relevant, true);
    assert.match(r.json.answer, /Nothing relevant was found/);
    assert.deepEqual(r.json.citations, []);
    assert.equal(chat.count, before, 'no model call for nothing');
  });

  test('bad input is a 4xx JSON error', async () => {
    for (const [body, status] of [
      [{}, 422],
      [{ question: '   ' }, 422],
      [{ question: 'x'.repeat(1001) }, 422],
      [{ question: 'ok?', stream: 'yes' }, 422],
      [{ question: 'ok?', conversation_id: -1 }, 422],
      [{ question: 'ok?', knowledge_base_ids: 'all' }, 422],
      [{ question: 'ok?', conversation_id: 999999 }, 404],
    ]) {
      const r = await ask(alice, body);
      assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 60)}: ${r.body}`);
      assert.ok(r.json.error.code);
    }
    const r = await s.c.call('POST', '/api/v1/answers', { json: { question: 'x' } });
    assert.equal(r.status, 401);
  });
});

describe('never a hang', () => {
  const checkUnavailable = (r, reason) => {
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.answer, null);
    assert.equal(r.json.answer_unavailable.reason, reason);
    assert.ok(r.json.answer_unavailable.message);
    assert.ok(r.json.results.length > 0, 'the search results still come');
  };
  const Q = { question: 'How much are meals during travel reimbursed per day?' };

  test('500 on every attempt: retried, then unavailable', async () => {
    chat.setMode('error');
    const before = chat.count;
    const r = await ask(alice, Q);
    checkUnavailable(r, 'unavailable');
    assert.equal(chat.count - before, 3, 'one attempt and two retries');
  });

  test('429 once: the retry answers', async () => {
    chat.setMode('ratelimit', { count: 1, retryAfter: 0 });
    const before = chat.count;
    const r = await ask(alice, Q);
    assert.equal(r.status, 200, r.body);
    assert.match(r.json.answer, /45 euros/);
    assert.equal(chat.count - before, 2);
  });

  test('429 throughout: rate_limited', async () => {
    chat.setMode('ratelimit', { retryAfter: 0 });
    checkUnavailable(await ask(alice, Q), 'rate_limited');
  });

  test('a hanging model: timeout within the deadline, as JSON and as a stream with an error event', async () => {
    chat.setMode('hang');
    let r = await ask(alice, Q);
    checkUnavailable(r, 'timeout');
    assert.ok(r.ms < LLM_TIMEOUT_MS + SLACK_MS, `answered in ${r.ms} ms`);
    const st = await postStream(`${s.api.url}/api/v1/answers`, { ...Q, stream: true }, { token: alice });
    assert.ok(st.ms < LLM_TIMEOUT_MS + SLACK_MS, `stream ended in ${st.ms} ms`);
    const err = st.events.find((e) => e.event === 'error');
    assert.equal(err.data.code, 'answer_unavailable');
    assert.equal(err.data.reason, 'timeout');
    const done = st.events.at(-1);
    assert.equal(done.event, 'done');
    assert.ok(done.data.results.length > 0);
  });

  test('slow past the deadline: timeout, within the deadline', async () => {
    chat.setMode('slow', { ms: LLM_TIMEOUT_MS * 3 });
    const r = await ask(alice, Q);
    checkUnavailable(r, 'timeout');
    assert.ok(r.ms < LLM_TIMEOUT_MS + SLACK_MS, `answered in ${r.ms} ms`);
  });

  test('a server that ignores "stream" and answers one chat.completion is understood', async () => {
    chat.setMode('whole');
    const st = await postStream(`${s.api.url}/api/v1/answers`, { ...Q, stream: true }, { token: alice });
    assert.match(st.events.filter((e) => e.event === 'delta').map((e) => e.data.text).join(''), /45 euros/);
    assert.equal(st.events.at(-1).data.answer_unavailable, null);
    assert.ok(st.events.at(-1).data.usage.prompt_tokens > 0);
    chat.setMode('ok');
  });

  test('slow within the deadline: answered', async () => {
    chat.setMode('slow', { ms: 300 });
    const r = await ask(alice, Q);
    assert.equal(r.status, 200);
    assert.match(r.json.answer, /45 euros/);
  });

  test('cut mid-stream: the text so far, then an error event (interrupted) and the results', async () => {
    chat.setMode('cut', { after: 3 });
    const st = await postStream(`${s.api.url}/api/v1/answers`, { ...Q, stream: true }, { token: alice });
    const deltas = st.events.filter((e) => e.event === 'delta');
    assert.equal(deltas.length, 3);
    const err = st.events.find((e) => e.event === 'error');
    assert.equal(err.data.reason, 'interrupted');
    assert.equal(st.events.at(-1).event, 'done');
    assert.equal(st.events.at(-1).data.answer_unavailable.reason, 'interrupted');
    chat.setMode('cut', { after: 2 });
    const r = await ask(alice, Q);
    checkUnavailable(r, 'interrupted');
    assert.ok(r.json.partial_answer.length > 0);
  });

  test('a model that stalls mid-stream is cut by the idle timeout', async () => {
    chat.setMode('stall', { after: 2 });
    const st = await postStream(`${s.api.url}/api/v1/answers`, { ...Q, stream: true }, { token: alice });
    assert.equal(st.events.find((e) => e.event === 'error').data.reason, 'interrupted');
    assert.ok(st.ms < IDLE_MS + SLACK_MS + 1000, `ended in ${st.ms} ms`);
  });

  test('a client that disconnects cancels the upstream request (stream and JSON)', async () => {
    chat.setMode('slow', { ms: 60000 });
    for (const stream of [true, false]) {
      const before = chat.count;
      const t0 = Date.now();
      if (stream) {
        await postStream(`${s.api.url}/api/v1/answers`, { ...Q, stream: true }, {
          token: alice,
          onEvent: (ev, req) => ev.event === 'start' && setTimeout(() => req.destroy(), 200),
        });
      } else {
        await ask(alice, Q, { timeoutMs: 500 }).catch(() => {});
      }
      await waitFor(() => chat.count > before && chat.requests.at(-1).closedAt, { timeoutMs: LLM_TIMEOUT_MS, what: 'upstream closed' });
      const took = chat.requests.at(-1).closedAt - t0;
      assert.ok(took < LLM_TIMEOUT_MS - 1000, `stream=${stream}: upstream closed after ${took} ms, before the deadline`);
    }
    await waitFor(() => s.api.logLines().some((l) => l.event === 'answers.done' && l.client_gone), { what: 'client_gone logged' });
    chat.setMode('ok');
  });

  test('the model down, and the model not configured: search results with the reason', async () => {
    const dead = await freePort();
    const down = await startAlmanac(['api'], { env: { ...s.env, ALMANAC_ANSWER_RATE_LIMIT: '1000', ALMANAC_LLM_URL: `http://127.0.0.1:${dead}/v1`, ALMANAC_LLM_RETRIES: '1' } });
    const none = await startAlmanac(['api'], { env: { ...s.env, ALMANAC_ANSWER_RATE_LIMIT: '1000' } });
    try {
      const q = { question: 'How long must passwords be?' };
      const r1 = await client(down).call('POST', '/api/v1/answers', { token: alice, json: q });
      checkUnavailable(r1, 'unavailable');
      const r2 = await client(none).call('POST', '/api/v1/answers', { token: alice, json: q });
      checkUnavailable(r2, 'not_configured');
      const st = await postStream(`${none.url}/api/v1/answers`, { ...q, stream: true }, { token: alice });
      assert.equal(st.events.find((e) => e.event === 'error').data.reason, 'not_configured');
      // /ready: the model is a check that warns, never one that fails readiness.
      const ready = await waitFor(async () => {
        const r = await httpRequest(`${down.url}/ready`);
        return r.json && r.json.checks['llm:responseTime'] && r.json.checks['llm:responseTime'][0].status !== 'pass' && r;
      }, { what: 'llm check failing' });
      assert.equal(ready.status, 200);
      assert.equal(ready.json.checks['llm:responseTime'][0].required, false);
      const rn = await httpRequest(`${none.url}/ready`);
      assert.equal(rn.json.checks['llm:responseTime'], undefined, 'no check without a model');
      assert.ok(rn.json.notes.some((n) => /answers: search results only/.test(n)), rn.body);
      const ok = (await httpRequest(`${s.api.url}/ready`)).json;
      assert.equal(ok.checks['llm:responseTime'][0].status, 'pass');
    } finally {
      await down.stop();
      await none.stop();
    }
  });
});

describe('isolation, rate limit, conversations', () => {
  test('only knowledge bases the user may read are searched and cited', async () => {
    chat.setMode('ok');
    const before = chat.requests.length;
    const r = await ask(alice, { question: 'What is the submarine project codename and budget?' });
    assert.equal(r.status, 200, r.body);
    assert.ok(r.json.results.every((x) => x.knowledge_base_id === kbA.id));
    assert.ok(r.json.citations.every((c) => c.knowledge_base_id === kbA.id));
    for (const req of chat.requests.slice(before)) assert.doesNotMatch(JSON.stringify(req.body), /Bluefin/);
    const r2 = await ask(alice, { question: 'submarine codename?', knowledge_base_ids: [kbB.id] });
    assert.equal(r2.status, 404);
    const mine = await ask(bob, { question: 'What is the submarine project codename?' });
    assert.match(mine.json.answer, /Bluefin/);
    assert.ok(mine.json.citations.every((c) => c.knowledge_base_id === kbB.id));
    // Conversations are per user.
    const other = await s.c.call('GET', `/api/v1/conversations/${mine.json.conversation_id}`, { token: alice });
    assert.equal(other.status, 404);
    const follow = await ask(alice, { question: 'and its budget?', conversation_id: mine.json.conversation_id });
    assert.equal(follow.status, 404);
    const del = await s.c.call('DELETE', `/api/v1/conversations/${mine.json.conversation_id}`, { token: alice });
    assert.equal(del.status, 404);
    const list = await s.c.call('GET', '/api/v1/conversations?limit=100', { token: alice });
    assert.ok(list.json.conversations.every((c) => c.id !== mine.json.conversation_id));
  });

  test('a follow-up sends the last turns to the model and retrieves with the last question', async () => {
    chat.setMode('ok');
    const first = await ask(alice, { question: 'How long must passwords be?' });
    const n = chat.count;
    const second = await ask(alice, { question: 'Are managers for them mandatory?', conversation_id: first.json.conversation_id });
    assert.equal(second.status, 200, second.body);
    assert.equal(second.json.conversation_id, first.json.conversation_id);
    const msgs = chat.requests[n].body.messages;
    assert.deepEqual(msgs.map((m) => m.role), ['system', 'user', 'assistant', 'user']);
    assert.equal(msgs[1].content, 'How long must passwords be?');
    assert.equal(msgs[2].content, first.json.answer);
    assert.match(second.json.answer, /Password managers are mandatory/);
    const conv = await s.c.call('GET', `/api/v1/conversations/${first.json.conversation_id}`, { token: alice });
    assert.equal(conv.json.turns.length, 2);
    assert.equal(conv.json.title, 'How long must passwords be?');
  });

  test('conversations are listed, renamed and deleted', async () => {
    const a = await ask(alice, { question: 'How are laptops protected?' });
    const id = a.json.conversation_id;
    const list = await s.c.call('GET', '/api/v1/conversations', { token: alice });
    assert.equal(list.status, 200);
    assert.equal(list.json.conversations[0].id, id, 'newest first');
    const ren = await s.c.call('PATCH', `/api/v1/conversations/${id}`, { token: alice, json: { title: 'Laptops' } });
    assert.equal(ren.status, 200);
    assert.equal(ren.json.title, 'Laptops');
    const bad = await s.c.call('PATCH', `/api/v1/conversations/${id}`, { token: alice, json: { title: '' } });
    assert.equal(bad.status, 422);
    const del = await s.c.call('DELETE', `/api/v1/conversations/${id}`, { token: alice });
    assert.equal(del.status, 200);
    assert.equal((await s.c.call('GET', `/api/v1/conversations/${id}`, { token: alice })).status, 404);
    assert.equal(sql(s.pg, `SELECT count(*) FROM conversation_turns WHERE conversation_id = ${id}`), '0');
  });

  test('deleting a knowledge base leaves its conversations readable, citations marked gone', async () => {
    const kb = await s.c.createKb(alice, 'temporary');
    const up = await s.c.upload(alice, kb.id, 'parking.txt', 'Visitor parking is on level minus two, bays 40 to 60.', { title: 'Parking' });
    await s.c.waitReady(alice, [up.json.id]);
    const a = await ask(alice, { question: 'Where is visitor parking?', knowledge_base_ids: [kb.id] });
    assert.equal(a.json.citations[0].document_id, up.json.id);
    let conv = await s.c.call('GET', `/api/v1/conversations/${a.json.conversation_id}`, { token: alice });
    assert.equal(conv.json.turns[0].citations[0].gone, false);
    assert.match(conv.json.turns[0].citations[0].text, /level minus two/);
    assert.equal((await s.c.call('DELETE', `/api/v1/knowledge-bases/${kb.id}`, { token: alice })).status, 200);
    conv = await s.c.call('GET', `/api/v1/conversations/${a.json.conversation_id}`, { token: alice });
    assert.equal(conv.status, 200);
    const c = conv.json.turns[0].citations[0];
    assert.equal(c.gone, true);
    assert.equal(c.text, null, 'no copy of the deleted text');
    assert.equal(c.title, 'Parking');
    assert.match(conv.json.turns[0].answer, /level minus two/);
  });

  test('a per-user rate limit answers 429 with Retry-After', async () => {
    const limited = await startAlmanac(['api'], { env: { ...s.env, ALMANAC_ANSWER_RATE_LIMIT: '2' } });
    // The window is per user across every api (Redis): start both users' windows afresh.
    const keys = redisCli(s.redis.port, 'KEYS', 'almanac:answers:rate:*').split('\n').filter(Boolean);
    if (keys.length) redisCli(s.redis.port, 'DEL', ...keys);
    try {
      const c = client(limited);
      const q = { question: 'How long must passwords be?' };
      for (let i = 0; i < 2; i++) assert.equal((await c.call('POST', '/api/v1/answers', { token: alice, json: q })).status, 200);
      const r = await c.call('POST', '/api/v1/answers', { token: alice, json: q });
      assert.equal(r.status, 429, r.body);
      assert.ok(Number(r.headers['retry-after']) >= 1);
      // Another user has their own budget.
      assert.equal((await c.call('POST', '/api/v1/answers', { token: bob, json: q })).status, 200);
    } finally {
      await limited.stop();
    }
  });
});

describe('shutdown', () => {
  test('a graceful stop with answers in flight: they end with a reason, the api exits 0 (leak-checked)', async () => {
    const api = await startAlmanac(['api'], {
      env: { ...s.env, ALMANAC_LLM_URL: chat.url, ALMANAC_LLM_TIMEOUT_MS: '60000', ALMANAC_LLM_IDLE_TIMEOUT_MS: '60000', ALMANAC_SHUTDOWN_TIMEOUT_MS: '500', ALMANAC_ANSWER_RATE_LIMIT: '1000' },
    });
    chat.setMode('hang');
    const before = chat.count;
    const q = { question: 'How long must passwords be?' };
    const streamed = postStream(`${api.url}/api/v1/answers`, { ...q, stream: true }, { token: alice });
    const whole = client(api).call('POST', '/api/v1/answers', { token: alice, json: q, timeoutMs: 20000 });
    await waitFor(() => chat.count >= before + 2, { what: 'both answers at the model' });
    const t0 = Date.now();
    api.signal('SIGTERM');
    const exit = await api.waitExit(15000);
    assert.equal(exit.code, 0, api.output().slice(-3000));
    assert.ok(Date.now() - t0 < 8000, 'stopped promptly');
    const st = await streamed;
    assert.equal(st.events.at(-1).event, 'done');
    assert.equal(st.events.find((e) => e.event === 'error').data.reason, 'unavailable');
    const w = await whole;
    assert.equal(w.status, 200);
    assert.equal(w.json.answer_unavailable.reason, 'unavailable');
    chat.setMode('ok');
  });
});

describe('the key', () => {
  const PROD = {
    ALMANAC_ENV: 'production',
    ALMANAC_DATABASE_URL: 'postgresql://almanac:Vq7mZp2Lr9Ts4Wx8@127.0.0.1:5432/almanac',
    ALMANAC_REDIS_URL: 'redis://:Hy3nKd8Rb6Fj1Gc5@127.0.0.1:6379/0',
    ALMANAC_QDRANT_URL: 'http://127.0.0.1:6333',
    ALMANAC_JWT_SECRET: 'Qm9vdHN0cmFwLXByb2Qtand0LWtleS1mb3ItdGVzdHM',
  };
  test('production refuses a known gateway default key, and a key over plain http to another host', async () => {
    const ok = await runAlmanac(['check-config'], { env: { ...PROD, ALMANAC_LLM_URL: 'https://llm.example.org/v1', ALMANAC_LLM_API_KEY: API_KEY } });
    assert.equal(ok.code, 0, ok.stderr);
    const denied = await runAlmanac(['check-config'], { env: { ...PROD, ALMANAC_LLM_URL: 'https://llm.example.org/v1', ALMANAC_LLM_API_KEY: 'sk-dev-master-key' } });
    assert.equal(denied.code, 78);
    assert.match(denied.stderr, /ALMANAC_LLM_API_KEY/);
    assert.ok(!denied.stderr.includes('sk-dev-master-key'), 'the value is never printed');
    const plain = await runAlmanac(['check-config'], { env: { ...PROD, ALMANAC_LLM_URL: 'http://llm.example.org/v1', ALMANAC_LLM_API_KEY: API_KEY } });
    assert.equal(plain.code, 78);
    assert.match(plain.stderr, /ALMANAC_LLM_URL/);
    assert.ok(!plain.stderr.includes(API_KEY));
  });
});

describe('operations', () => {
  test('metrics count answers, latency, first tokens, tokens and upstream errors', async () => {
    const m = (await httpRequest(`${s.api.url}/metrics`)).body;
    const val = (re) => Number((m.match(re) || [])[1]);
    assert.ok(val(/^almanac_answer_duration_seconds_count (\d+)/m) > 5);
    assert.ok(val(/^almanac_answer_first_token_seconds_count (\d+)/m) > 3);
    assert.ok(val(/^almanac_llm_tokens_total\{direction="in"\} (\d+)/m) > 0);
    assert.ok(val(/^almanac_llm_tokens_total\{direction="out"\} (\d+)/m) > 0);
    assert.ok(val(/^almanac_llm_errors_total\{reason="timeout"\} (\d+)/m) >= 2);
    assert.ok(val(/^almanac_llm_errors_total\{reason="unavailable"\} (\d+)/m) >= 1);
    assert.ok(val(/^almanac_answers_total\{outcome="nothing_relevant"\} (\d+)/m) >= 1);
  });

  test('logs carry the request id and never the key, the passages or the answers', async () => {
    const out = s.api.output();
    assert.ok(!out.includes(API_KEY), 'the key is never logged');
    assert.ok(!out.includes('45 euros'), 'passages and answers are never logged');
    assert.ok(!out.includes('sixteen characters'));
    const done = s.api.logLines().filter((l) => l.event === 'answers.done');
    assert.ok(done.length > 5);
    for (const l of done) assert.match(l.request_id, /^[0-9a-f]{32}$/);
    const reqs = new Set(s.api.logLines().filter((l) => l.event === 'http.request').map((l) => l.request_id));
    assert.ok(done.every((l) => reqs.has(l.request_id)), 'the same request id as the request line');
  });
});
