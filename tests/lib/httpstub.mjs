/* SPDX-License-Identifier: Apache-2.0 */
// HTTP server plumbing of the test stand-ins (fakeembeddings.mjs, fakechat.mjs,
// qdrant-standin.mjs), FOR TESTS ONLY.
//
// The server listens on 127.0.0.1 only; Node's own timeouts never answer or close a
// hanging request; neither the server nor its connections keep a test process alive;
// and the open connections are tracked, so that hanging and kept-alive requests can be
// dropped when a stand-in stops listening or switches out of a hanging mode.

import http from 'node:http';
import { freePort } from './services.mjs';

/** Reads a request's body, keeping max bytes at most: done(body), body null when larger. */
export function readBody(req, max, done) {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size <= max) chunks.push(c);
  });
  req.on('end', () => done(size > max ? null : Buffer.concat(chunks)));
}

/** A JSON (or, for a string, verbatim) answer with its length. */
export function sendJson(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** The error body of OpenAI's API (the chat and embeddings stand-ins answer with it). */
export function openaiError(message, type, code = null) {
  return { error: { message, type, param: null, code } };
}

export function stubServer(handler) {
  const server = http.createServer(handler);
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.keepAliveTimeout = 60000;
  server.timeout = 0;
  server.unref();
  const sockets = new Set();
  server.on('connection', (s) => {
    s.unref();
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  /** Destroys every open connection (answered or not). */
  const dropConnections = () => {
    for (const s of sockets) s.destroy();
  };

  /** Listens on port (0: one the kernel picks); resolves to the bound port. */
  const listen = (port) =>
    new Promise((resolve, reject) => {
      const onErr = (e) => reject(e);
      server.once('error', onErr);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', onErr);
        resolve(server.address().port);
      });
    });

  /**
   * Listens on port, or when port is 0 on a port outside the ephemeral range (see
   * freePort), so that it stays ours while the stand-in refuses connections.
   */
  const listenStable = async (port) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await listen(port || (await freePort()));
      } catch (e) {
        if (port || e.code !== 'EADDRINUSE' || attempt >= 4) throw e;
      }
    }
  };

  /** Stops listening and drops every connection; resolves once the server is closed. */
  const unlisten = () =>
    new Promise((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      // Kept-alive and hanging connections would otherwise keep being served.
      dropConnections();
    });

  return { server, listen, listenStable, unlisten, dropConnections };
}
