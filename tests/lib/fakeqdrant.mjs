/* SPDX-License-Identifier: Apache-2.0 */
// Fake Qdrant readiness endpoint, FOR TESTS ONLY.
//
// A fault-injection HTTP server that stands in for Qdrant's `GET /readyz` so the
// integration tests can make the Qdrant dependency healthy, unhealthy, hanging or
// unreachable at will. It implements nothing else of Qdrant.
//
// Modes:
//   ready    -> 200 text/plain "all shards are ready"
//   notready -> 503
//   hang     -> the connection is accepted and the request read, but never answered
//   refuse   -> the listening socket is closed (connections are refused); switching
//               to any other mode listens again on the same port
// GET /collections/{name} answers as /readyz does in each mode, with (in mode ready) a
// CollectionInfo of `collectionDim` cosine vectors (default 384, ALMANAC_EMBEDDINGS_DIM's
// default), or 404 when collectionDim is 0, so the api's qdrant_collection check can be
// driven too (setCollectionDim).
// Any other path -> 404 JSON.

import { stubServer } from './httpstub.mjs';

const MODES = new Set(['ready', 'notready', 'hang', 'refuse']);

export async function startFakeQdrant({ mode = 'ready', port = 0, collectionDim = 384 } = {}) {
  if (!MODES.has(mode)) throw new Error(`unknown mode ${mode}`);
  let current = mode;
  let dim = collectionDim;
  let count = 0;
  const requests = []; // {method, url, headers}

  const { server, listen, listenStable, unlisten, dropConnections } = stubServer((req, res) => {
    requests.push({ method: req.method, url: req.url, headers: { ...req.headers } });
    const pathOnly = req.url.split('?')[0];
    // Read the whole request first in every mode.
    req.resume();
    req.on('end', () => {
      const isCollection = req.method === 'GET' && /^\/collections\/[^/]+$/.test(pathOnly);
      if (isCollection && current === 'ready') {
        const found = dim > 0;
        const body = JSON.stringify(
          found
            ? {
                result: {
                  status: 'green',
                  points_count: 0,
                  config: { params: { vectors: { size: dim, distance: 'Cosine' } } },
                  payload_schema: { knowledge_base_id: { data_type: 'integer' }, document_id: { data_type: 'integer' } },
                },
                status: 'ok',
                time: 0,
              }
            : { status: { error: 'Not found: Collection does not exist' }, time: 0 },
        );
        res.writeHead(found ? 200 : 404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      if (pathOnly !== '/readyz' && !isCollection) {
        const body = JSON.stringify({ status: { error: 'Not found' }, time: 0 });
        res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      if (!isCollection) count++;
      switch (current) {
        case 'ready': {
          const body = 'all shards are ready';
          res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
          res.end(body);
          break;
        }
        case 'notready': {
          const body = 'some shards are not ready';
          res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
          res.end(body);
          break;
        }
        case 'hang':
        default:
          // Never answer; the socket is destroyed on close() or a switch to refuse.
          break;
      }
    });
  });

  // A port outside the ephemeral range (see freePort), so it stays ours while refusing.
  const boundPort = await listenStable(port);
  if (current === 'refuse') await unlisten();

  return {
    get url() {
      return `http://127.0.0.1:${boundPort}`;
    },
    get port() {
      return boundPort;
    },
    /** Number of GET /readyz requests received so far. */
    get count() {
      return count;
    },
    get mode() {
      return current;
    },
    requests,
    /** The dimension GET /collections/{name} reports; 0: the collection is missing. */
    setCollectionDim(d) {
      dim = d;
    },
    /** Switch mode; resolves once the listening state matches the mode. */
    async setMode(m) {
      if (!MODES.has(m)) throw new Error(`unknown mode ${m}`);
      const prev = current;
      current = m;
      if (m === 'refuse') {
        await unlisten();
      } else {
        if (prev === 'hang') {
          // Pending hung requests stay pending; drop them so clients see an error
          // instead of a late answer from the new mode.
          dropConnections();
        }
        if (!server.listening) await listen(boundPort);
      }
    },
    async close() {
      current = 'refuse';
      await unlisten();
    },
  };
}
