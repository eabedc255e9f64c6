/* SPDX-License-Identifier: Apache-2.0 */
// Server-Sent Events for the tests and benchmarks of the answers API: a parser of
// text/event-stream and a streaming POST that reports each event as it arrives.

import http from 'node:http';

/** Parses complete events out of text; returns {events: [{event, data}], rest}. */
export function parseSse(text) {
  const events = [];
  const blocks = text.split(/\r\n\r\n|\n\n|\r\r/);
  const rest = blocks.pop();
  for (const block of blocks) {
    let event = 'message';
    const data = [];
    for (const line of block.split(/\r\n|\n|\r/)) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (!data.length) continue;
    const text = data.join('\n');
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text; // "[DONE]" of a chat completions stream
    }
    events.push({ event, data: parsed });
  }
  return { events, rest };
}

/**
 * POSTs json to url and reads the answer as a stream. Resolves {status, headers, events,
 * firstByteMs, ms, body}. onEvent(ev, req) is called per event (it may req.destroy()).
 */
export function postStream(url, json, { token, headers = {}, onEvent, timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(json);
    const t0 = performance.now();
    const h = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload), ...headers };
    if (token) h.Authorization = `Bearer ${token}`;
    let firstByteMs = null;
    let body = '';
    let buf = '';
    const events = [];
    const req = http.request(url, { method: 'POST', headers: h, agent: false }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (c) => {
        if (firstByteMs === null) firstByteMs = performance.now() - t0;
        body += c;
        buf += c;
        const { events: evs, rest } = parseSse(buf);
        buf = rest;
        for (const ev of evs) {
          ev.ms = performance.now() - t0;
          events.push(ev);
          if (onEvent) onEvent(ev, req);
        }
      });
      const done = () => resolve({ status: res.statusCode, headers: res.headers, events, firstByteMs, ms: performance.now() - t0, body, complete: res.complete });
      res.on('end', done);
      res.on('close', done);
      res.on('error', () => done());
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', (e) => (req.destroyed && e.code === 'ECONNRESET' ? resolve({ status: 0, events, firstByteMs, body, aborted: true }) : reject(e)));
    req.end(payload);
  });
}
