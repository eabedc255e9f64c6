/* SPDX-License-Identifier: Apache-2.0 */
// Qdrant stand-in, FOR TESTS ONLY: not Qdrant, and never to be used as a vector store.
//
// An in-memory HTTP server that implements the subset of Qdrant's REST contract that
// Almanac uses (tests/contracts/qdrant-openapi-v1.19.json), with exact brute-force
// scoring, so integration tests can run without a Qdrant binary:
//
//   GET  /readyz                                    "all shards are ready"
//   GET  /collections/{name}                        CollectionInfo, or 404
//   PUT  /collections/{name}                        single unnamed vector config; 409 if it exists
//   DELETE /collections/{name}                      (for test set-up)
//   PUT  /collections/{name}/index                  payload index (recorded in payload_schema)
//   PUT  /collections/{name}/points                 upsert (PointsList or PointsBatch)
//   POST /collections/{name}/points/delete          by ids or by filter
//   POST /collections/{name}/points/count           by filter
//   POST /collections/{name}/points/query           nearest by Cosine/Dot/Euclid/Manhattan
//   POST /collections/{name}/snapshots              snapshot (the stand-in's own JSON format)
//   GET  /collections/{name}/snapshots              list them
//   GET  /collections/{name}/snapshots/{snapshot}   the file (application/octet-stream)
//   DELETE /collections/{name}/snapshots/{snapshot}
//   POST /collections/{name}/snapshots/upload       multipart `snapshot`: replaces the
//                                                   collection; ?checksum= (SHA-256) checked
//
// Filters: must / should / must_not (nested filters too), match value / any / except,
// range lt / lte / gt / gte, has_id. Replies use the contract's envelope
// {"result":..., "status":"ok", "time":...} and errors {"status":{"error":...}, "time":...}.
//
// Every request is checked against the contract itself: the route and method must exist
// in its paths, query parameters must match their declared schemas, and the JSON body must
// validate (ajv) against the operation's requestBody schema. A failure answers 400 with the
// errors and is counted in `invalidRequests`, so tests can assert that Almanac only sends
// contract-conforming requests. The stand-in's own replies are validated against the
// operation's 200 schema too (`invalidReplies`), so the stand-in cannot drift from the
// contract unnoticed.
//
// When apiKey is set, every request but the health endpoints needs the `api-key` header
// (or `Authorization: Bearer`): 401 otherwise. Fault modes (setMode): 'ok'; 'down' (the
// listening socket is closed: connections are refused; another mode listens again on the
// same port); 'hang' (requests are read but never answered); 'error' (500 on every
// request); 'reject' (healthy to /readyz, 500 on everything else: Qdrant up, refusing
// what it is sent); 'notready' (/readyz answers 503 "some shards are not ready", the rest
// as in 'ok': a Qdrant still loading); 'slow' ({ms}: every answer is delayed).
//
// The contract: tests/contracts/qdrant-openapi-v1.19.json, or $ALMANAC_QDRANT_CONTRACT.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { readBody, stubServer } from './httpstub.mjs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const QDRANT_CONTRACT = process.env.ALMANAC_QDRANT_CONTRACT
  ? path.resolve(process.env.ALMANAC_QDRANT_CONTRACT)
  : path.join(REPO_ROOT, 'tests', 'contracts', 'qdrant-openapi-v1.19.json');

const MODES = new Set(['ok', 'down', 'hang', 'error', 'reject', 'notready', 'slow']);
const HEALTH_PATHS = new Set(['/healthz', '/livez', '/readyz']);
const SCHEMA_ID = 'qdrant-openapi';
const MAX_BODY = 32 << 20;

// ---------------------------------------------------------------- the contract

// Keywords that do not constrain a value.
const ANNOTATIONS = new Set(['description', 'default', 'example', 'deprecated', 'title', 'format']);

// OpenAPI 3.0 `nullable` as JSON Schema: {type: t, nullable} -> {type: [t, 'null']}, and the
// bare {nullable: true} that Qdrant's generator puts in anyOf -> {type: 'null'}.
function toJsonSchema(node) {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (!node || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) out[k] = k === 'example' ? v : toJsonSchema(v);
  if (out.nullable === true) {
    delete out.nullable;
    if (out.type !== undefined) {
      out.type = [].concat(out.type, 'null');
      if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    } else if (Object.keys(out).every((k) => ANNOTATIONS.has(k))) {
      out.type = 'null';
    } else {
      return { anyOf: [{ type: 'null' }, out] };
    }
  } else {
    delete out.nullable;
  }
  return out;
}

function loadContract(file) {
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`qdrant stand-in: cannot read the Qdrant contract ${file}: ${e.message}`);
  }
  const ajv = new Ajv({ strict: false, allErrors: true, allowUnionTypes: true });
  addFormats(ajv);
  const isUint = (x) => Number.isInteger(x) && x >= 0;
  for (const f of ['uint', 'uint8', 'uint16', 'uint32', 'uint64']) ajv.addFormat(f, { type: 'number', validate: isUint });
  ajv.addFormat('int64', { type: 'number', validate: Number.isInteger });
  for (const f of ['float', 'double']) ajv.addFormat(f, { type: 'number', validate: Number.isFinite });
  ajv.addFormat('partial-date-time', true);
  ajv.addSchema({ $id: SCHEMA_ID, components: toJsonSchema(doc.components) });

  // Operations by method, with their path template as a regular expression.
  const operations = [];
  for (const [template, item] of Object.entries(doc.paths)) {
    const names = [];
    const re = new RegExp(
      '^' +
        template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g, (_, n) => {
          names.push(n);
          return '([^/]+)';
        }) +
        '$',
    );
    for (const [method, op] of Object.entries(item)) {
      if (!['get', 'put', 'post', 'delete', 'patch'].includes(method)) continue;
      operations.push({ method: method.toUpperCase(), template, re, names, op, literal: !names.length });
    }
  }
  // Literal paths win over templates (/collections/aliases vs /collections/{name}).
  operations.sort((a, b) => Number(b.literal) - Number(a.literal));

  const compiled = new Map();
  // A path's inline schemas may $ref components: resolve those against the contract's id.
  const inline = (schema) => {
    const key = 'inline:' + JSON.stringify(schema);
    if (!compiled.has(key)) {
      const rewrite = (n) => {
        if (Array.isArray(n)) return n.map(rewrite);
        if (!n || typeof n !== 'object') return n;
        const o = {};
        for (const [k, v] of Object.entries(n)) o[k] = k === '$ref' ? SCHEMA_ID + v : rewrite(v);
        return o;
      };
      compiled.set(key, ajv.compile(rewrite(toJsonSchema(schema))));
    }
    return compiled.get(key);
  };

  return {
    /** {operation, params} for method + path, or null when the contract has no such route. */
    route(method, pathname) {
      let pathKnown = false;
      for (const o of operations) {
        const m = o.re.exec(pathname);
        if (!m) continue;
        pathKnown = true;
        if (o.method !== method) continue;
        const params = {};
        o.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1])));
        return { operation: o, params };
      }
      return pathKnown ? { methodNotAllowed: true } : null;
    },
    /** Problems with the query string and body of a request to operation. */
    checkRequest(operation, searchParams, body, hasBody) {
      const problems = [];
      const declared = new Map(
        (operation.op.parameters || []).filter((p) => p.in === 'query').map((p) => [p.name, p]),
      );
      for (const [name, raw] of searchParams) {
        const p = declared.get(name);
        if (!p) {
          problems.push(`query parameter ${name} is not in the contract`);
          continue;
        }
        let value = raw;
        const type = p.schema && p.schema.type;
        if (type === 'boolean') value = raw === 'true' ? true : raw === 'false' ? false : raw;
        else if (type === 'integer' || type === 'number') value = raw !== '' && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
        const v = inline(p.schema || {});
        if (!v(value)) problems.push(`query parameter ${name}: ${ajvText(v.errors)}`);
      }
      const rb = operation.op.requestBody;
      const schema = rb && rb.content && rb.content['application/json'] && rb.content['application/json'].schema;
      if (schema) {
        if (!hasBody) {
          if (rb.required !== false) problems.push('missing JSON body');
        } else {
          const v = inline(schema);
          if (!v(body)) problems.push(...summarize(v.errors, 'body'));
        }
      } else if (hasBody && !(rb && rb.content && rb.content['multipart/form-data'])) {
        problems.push('this operation takes no body');
      }
      return problems;
    },
    /** Problems with our own 200 reply to operation. */
    checkReply(operation, status, reply) {
      const r = operation.op.responses && operation.op.responses[String(status)];
      const schema = r && r.content && r.content['application/json'] && r.content['application/json'].schema;
      if (!schema) return [];
      const v = inline(schema);
      return v(reply) ? [] : summarize(v.errors, 'reply');
    },
  };
}

// The parts of a multipart/form-data body: {name: Buffer} (files and fields alike).
function parseMultipart(raw, boundary) {
  const out = {};
  const delim = Buffer.from(`--${boundary}`);
  let at = raw.indexOf(delim);
  while (at >= 0) {
    const start = at + delim.length;
    if (raw.slice(start, start + 2).toString() === '--') break;
    const headEnd = raw.indexOf('\r\n\r\n', start);
    if (headEnd < 0) break;
    const next = raw.indexOf(Buffer.concat([Buffer.from('\r\n'), delim]), headEnd + 4);
    if (next < 0) break;
    const head = raw.slice(start, headEnd).toString('utf8');
    const name = /name="([^"]*)"/i.exec(head);
    if (name) out[name[1]] = raw.slice(headEnd + 4, next);
    at = next + 2;
  }
  return out;
}

// ajv's errors, deduplicated and capped: an anyOf mismatch lists every alternative.
function summarize(errors, what) {
  const lines = [
    ...new Set(
      (errors || []).map((e) => {
        const extra = e.params && (e.params.additionalProperty || e.params.missingProperty || e.params.format);
        return `${what}${e.instancePath} ${e.message}${extra ? ` (${extra})` : ''}`;
      }),
    ),
  ];
  return lines.length > 12 ? [...lines.slice(0, 12), `and ${lines.length - 12} more`] : lines;
}

function ajvText(errors) {
  return (errors || []).map((e) => `${e.instancePath || '(value)'} ${e.message}`).join('; ');
}

let contractCache = null;
function contract() {
  if (!contractCache) contractCache = loadContract(QDRANT_CONTRACT);
  return contractCache;
}

// ---------------------------------------------------------------- vectors and filters

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}
const unsupported = (what) => new HttpError(400, `Bad request: ${what} is not supported by the Qdrant stand-in`);

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
/** Canonical id key: integers as numbers, UUIDs lower-case with hyphens. */
function pointId(id) {
  if (typeof id === 'number') return id;
  if (typeof id === 'string' && UUID_RE.test(id)) {
    const h = id.replace(/-/g, '').toLowerCase();
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  throw new HttpError(400, `Format error in JSON body: value ${JSON.stringify(id)} is not a valid point ID`);
}

function norm(v) {
  return Math.sqrt(v.reduce((s, x) => s + x * x, 0));
}

/** The stored form of a vector: Qdrant normalizes Cosine vectors on insertion. */
function storeVector(v, distance) {
  if (distance !== 'Cosine') return v.slice();
  const n = norm(v);
  return n > 0 ? v.map((x) => x / n) : v.slice();
}

/** Score of stored vector a against query q (already in stored form): higher is better. */
function score(distance, a, q) {
  switch (distance) {
    case 'Cosine':
    case 'Dot':
      return a.reduce((s, x, i) => s + x * q[i], 0);
    case 'Euclid':
      return Math.sqrt(a.reduce((s, x, i) => s + (x - q[i]) ** 2, 0));
    case 'Manhattan':
      return a.reduce((s, x, i) => s + Math.abs(x - q[i]), 0);
    default:
      throw unsupported(`distance ${distance}`);
  }
}
const smallerIsBetter = (distance) => distance === 'Euclid' || distance === 'Manhattan';

function payloadValues(payload, key) {
  let cur = [payload];
  for (const part of key.split('.')) {
    const next = [];
    for (const c of cur) {
      if (c && typeof c === 'object' && !Array.isArray(c) && part in c) {
        const v = c[part];
        if (Array.isArray(v)) next.push(...v);
        else next.push(v);
      }
    }
    cur = next;
  }
  return cur.filter((v) => v !== null && v !== undefined);
}

const asList = (c) => (c === undefined || c === null ? [] : Array.isArray(c) ? c : [c]);

function matchCondition(point, cond) {
  if (cond.has_id !== undefined) return cond.has_id.map(pointId).includes(point.id);
  if (cond.must !== undefined || cond.should !== undefined || cond.must_not !== undefined || cond.min_should !== undefined) {
    return matchFilter(point, cond);
  }
  if (typeof cond.key !== 'string') throw unsupported(`condition ${JSON.stringify(Object.keys(cond))}`);
  const known = new Set(['key', 'match', 'range']);
  for (const [k, v] of Object.entries(cond)) {
    if (!known.has(k) && v !== null) throw unsupported(`field condition ${k}`);
  }
  const values = payloadValues(point.payload, cond.key);
  let ok = true;
  if (cond.match) {
    const m = cond.match;
    if ('value' in m) ok = ok && values.some((v) => v === m.value);
    else if ('any' in m) ok = ok && values.some((v) => m.any.includes(v));
    else if ('except' in m) ok = ok && !values.some((v) => m.except.includes(v));
    else throw unsupported(`match ${JSON.stringify(Object.keys(m))}`);
  }
  if (cond.range) {
    const r = cond.range;
    const nums = values.filter((v) => typeof v === 'number');
    ok =
      ok &&
      nums.some(
        (v) =>
          (r.lt == null || v < r.lt) && (r.lte == null || v <= r.lte) && (r.gt == null || v > r.gt) && (r.gte == null || v >= r.gte),
      );
  }
  return ok;
}

function matchFilter(point, filter) {
  if (!filter) return true;
  if (filter.min_should != null) throw unsupported('min_should');
  const must = asList(filter.must);
  const should = asList(filter.should);
  const mustNot = asList(filter.must_not);
  return (
    must.every((c) => matchCondition(point, c)) &&
    (should.length === 0 || should.some((c) => matchCondition(point, c))) &&
    !mustNot.some((c) => matchCondition(point, c))
  );
}

function selectPayload(payload, sel) {
  if (sel === undefined || sel === null || sel === false) return undefined;
  if (sel === true) return structuredClone(payload);
  const pick = (keys) => Object.fromEntries(keys.filter((k) => k in payload).map((k) => [k, structuredClone(payload[k])]));
  if (Array.isArray(sel)) return pick(sel);
  if (Array.isArray(sel.include)) return pick(sel.include);
  if (Array.isArray(sel.exclude)) {
    return Object.fromEntries(Object.entries(structuredClone(payload)).filter(([k]) => !sel.exclude.includes(k)));
  }
  throw unsupported('this with_payload selector');
}

// ---------------------------------------------------------------- the server

export async function startQdrantStandin({ apiKey = null, mode = 'ok', port = 0, ms = 0 } = {}) {
  if (!MODES.has(mode)) throw new Error(`unknown mode ${mode}`);
  const c = contract();
  let current = mode;
  let slowMs = ms;
  let invalidRequests = 0;
  let invalidReplies = 0;
  const invalid = []; // {method, path, problems}
  const requests = []; // {method, path, url, status}
  const store = new Map(); // name -> {dim, distance, points: Map(id -> point), indexes: Map, opId}
  const snapshots = new Map(); // collection name -> Map(snapshot name -> {file: Buffer, creation_time})

  const send = (res, entry, status, obj) => {
    entry.status = status;
    const body = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const ok = (result, t0) => ({ result, status: 'ok', time: (performance.now() - t0) / 1000 });
  const fail = (message, t0) => ({ status: { error: message }, time: (performance.now() - t0) / 1000 });

  const collection = (name) => {
    const col = store.get(name);
    if (!col) throw new HttpError(404, `Not found: Collection \`${name}\` doesn't exist!`);
    return col;
  };
  const updated = (col, wait) => ({ operation_id: col.opId++, status: wait ? 'completed' : 'acknowledged' });

  const info = (col) => {
    const payloadSchema = {};
    for (const [field, type] of col.indexes) {
      payloadSchema[field] = { data_type: type, points: [...col.points.values()].filter((p) => payloadValues(p.payload, field).length).length };
    }
    return {
      status: 'green',
      optimizer_status: 'ok',
      indexed_vectors_count: 0,
      points_count: col.points.size,
      segments_count: 1,
      config: {
        params: {
          vectors: { size: col.dim, distance: col.distance },
          shard_number: 1,
          replication_factor: 1,
          write_consistency_factor: 1,
          on_disk_payload: true,
        },
        hnsw_config: { m: 16, ef_construct: 100, full_scan_threshold: 10000, max_indexing_threads: 0, on_disk: false },
        optimizer_config: { deleted_threshold: 0.2, vacuum_min_vector_number: 1000, default_segment_number: 0, flush_interval_sec: 5 },
        wal_config: { wal_capacity_mb: 32, wal_segments_ahead: 0 },
        quantization_config: null,
      },
      payload_schema: payloadSchema,
    };
  };

  const checkVector = (col, v) => {
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) throw unsupported('a named, sparse or multi vector');
    if (v.length !== col.dim) throw new HttpError(400, `Wrong input: Vector dimension error: expected dim: ${col.dim}, got ${v.length}`);
  };

  const describe = (name, sn) => ({
    name,
    creation_time: sn.creation_time,
    size: sn.file.length,
    checksum: crypto.createHash('sha256').update(sn.file).digest('hex'),
  });

  const selectPoints = (col, sel) => {
    if (Array.isArray(sel.points)) {
      const ids = new Set(sel.points.map(pointId));
      return [...col.points.values()].filter((p) => ids.has(p.id));
    }
    return [...col.points.values()].filter((p) => matchFilter(p, sel.filter));
  };

  // One operation of the contract; returns the result (the envelope is added by the caller).
  function operate(template, method, params, q, body) {
    const wait = q.get('wait') === 'true';
    const key = `${method} ${template}`;
    switch (key) {
      case 'GET /collections/{collection_name}':
        return info(collection(params.collection_name));
      case 'PUT /collections/{collection_name}': {
        const name = params.collection_name;
        if (store.has(name)) throw new HttpError(409, `Wrong input: Collection \`${name}\` already exists!`);
        const v = body.vectors;
        if (!v || typeof v.size !== 'number') throw unsupported('a collection without one unnamed vector');
        store.set(name, { dim: v.size, distance: v.distance, points: new Map(), indexes: new Map(), opId: 0 });
        return true;
      }
      case 'DELETE /collections/{collection_name}':
        return store.delete(params.collection_name);
      case 'PUT /collections/{collection_name}/index': {
        const col = collection(params.collection_name);
        const schema = body.field_schema;
        const type = typeof schema === 'string' ? schema : schema && schema.type;
        if (!type) throw new HttpError(400, 'Bad request: field_schema is required');
        col.indexes.set(body.field_name, type);
        return updated(col, wait);
      }
      case 'PUT /collections/{collection_name}/points': {
        const col = collection(params.collection_name);
        let pts;
        if (body.batch) {
          const b = body.batch;
          if (!Array.isArray(b.vectors)) throw unsupported('named batch vectors');
          pts = b.ids.map((id, i) => ({ id, vector: b.vectors[i], payload: b.payloads ? b.payloads[i] : null }));
        } else {
          pts = body.points;
        }
        if (body.update_filter || (body.update_mode && body.update_mode !== 'upsert')) throw unsupported('update_filter / update_mode');
        const staged = pts.map((p) => {
          checkVector(col, p.vector);
          return { id: pointId(p.id), vector: storeVector(p.vector, col.distance), payload: structuredClone(p.payload || {}) };
        });
        for (const p of staged) {
          col.points.set(p.id, { ...p, version: col.opId });
        }
        return updated(col, wait);
      }
      case 'POST /collections/{collection_name}/points/delete': {
        const col = collection(params.collection_name);
        for (const p of selectPoints(col, body)) col.points.delete(p.id);
        return updated(col, wait);
      }
      case 'POST /collections/{collection_name}/points/count': {
        const col = collection(params.collection_name);
        return { count: [...col.points.values()].filter((p) => matchFilter(p, body.filter)).length };
      }
      case 'POST /collections/{collection_name}/points/query': {
        const col = collection(params.collection_name);
        for (const k of ['prefetch', 'using', 'lookup_from', 'shard_key']) {
          if (body[k] != null) throw unsupported(k);
        }
        const query = body.query;
        if (!Array.isArray(query)) throw unsupported('a query other than a dense vector');
        checkVector(col, query);
        const qv = storeVector(query, col.distance);
        const limit = body.limit ?? 10;
        const offset = body.offset ?? 0;
        const worse = smallerIsBetter(col.distance);
        let scored = [...col.points.values()]
          .filter((p) => matchFilter(p, body.filter))
          .map((p) => ({ p, score: score(col.distance, p.vector, qv) }));
        if (body.score_threshold != null) scored = scored.filter((s) => (worse ? s.score <= body.score_threshold : s.score >= body.score_threshold));
        scored.sort((a, b) => (worse ? a.score - b.score : b.score - a.score) || String(a.p.id).localeCompare(String(b.p.id)));
        return {
          points: scored.slice(offset, offset + limit).map(({ p, score: s }) => {
            const out = { id: p.id, version: p.version, score: s };
            const payload = selectPayload(p.payload, body.with_payload);
            if (payload !== undefined) out.payload = payload;
            if (body.with_vector === true) out.vector = p.vector.slice();
            return out;
          }),
        };
      }
      case 'POST /collections/{collection_name}/snapshots': {
        const name = params.collection_name;
        const col = collection(name);
        const file = Buffer.from(
          JSON.stringify({
            format: 'qdrant-standin-snapshot-1',
            dim: col.dim,
            distance: col.distance,
            indexes: [...col.indexes],
            points: [...col.points.values()].map((p) => ({ id: p.id, vector: p.vector, payload: p.payload })),
          }),
        );
        const now = new Date();
        const snap = `${name}-standin-${now.toISOString().replace(/[:.]/g, '-')}-${crypto.randomBytes(3).toString('hex')}.snapshot`;
        if (!snapshots.has(name)) snapshots.set(name, new Map());
        snapshots.get(name).set(snap, { file, creation_time: now.toISOString().slice(0, 19) });
        return describe(snap, snapshots.get(name).get(snap));
      }
      case 'GET /collections/{collection_name}/snapshots':
        collection(params.collection_name);
        return [...(snapshots.get(params.collection_name) || new Map())].map(([n, sn]) => describe(n, sn));
      case 'GET /collections/{collection_name}/snapshots/{snapshot_name}': {
        const sn = snapshots.get(params.collection_name)?.get(params.snapshot_name);
        if (!sn) throw new HttpError(404, `Not found: Snapshot ${params.snapshot_name} not found`);
        return { binary: sn.file };
      }
      case 'DELETE /collections/{collection_name}/snapshots/{snapshot_name}': {
        const m = snapshots.get(params.collection_name);
        if (!m || !m.delete(params.snapshot_name)) throw new HttpError(404, `Not found: Snapshot ${params.snapshot_name} not found`);
        return true;
      }
      case 'POST /collections/{collection_name}/snapshots/upload': {
        const file = body.snapshot;
        if (!Buffer.isBuffer(file)) throw new HttpError(400, 'Bad request: no snapshot file in the form');
        const want = q.get('checksum');
        const have = crypto.createHash('sha256').update(file).digest('hex');
        if (want && want !== have) throw new HttpError(400, `Bad request: Checksum mismatch: expected ${want}, got ${have}`);
        let snap;
        try {
          snap = JSON.parse(file.toString('utf8'));
        } catch {
          throw new HttpError(400, 'Bad request: not a snapshot');
        }
        if (snap.format !== 'qdrant-standin-snapshot-1') throw new HttpError(400, 'Bad request: not a snapshot');
        const points = new Map(snap.points.map((p) => [p.id, { ...p, version: 0 }]));
        store.set(params.collection_name, { dim: snap.dim, distance: snap.distance, points, indexes: new Map(snap.indexes), opId: 1 });
        return true;
      }
      default:
        throw new HttpError(501, `Not implemented by the Qdrant stand-in: ${key}`);
    }
  }

  function authorized(req, pathname) {
    if (!apiKey || HEALTH_PATHS.has(pathname)) return true;
    const auth = req.headers.authorization || '';
    return req.headers['api-key'] === apiKey || auth === `Bearer ${apiKey}`;
  }

  function answer(req, res, entry, raw, t0) {
    const url = new URL(req.url, 'http://127.0.0.1');
    const pathname = url.pathname;
    if (current === 'error' || (current === 'reject' && !HEALTH_PATHS.has(pathname))) {
      return send(res, entry, 500, fail('Service internal error: stand-in fault mode', t0));
    }
    if (!authorized(req, pathname)) return send(res, entry, 401, fail('Must provide an API key or an Authorization bearer token', t0));
    if (req.method === 'GET' && pathname === '/readyz') {
      entry.status = current === 'notready' ? 503 : 200;
      res.writeHead(entry.status, { 'content-type': 'text/plain; charset=utf-8' });
      return res.end(current === 'notready' ? 'some shards are not ready' : 'all shards are ready');
    }
    const route = c.route(req.method, pathname);
    if (!route) return send(res, entry, 404, fail(`Not found: ${pathname}`, t0));
    if (route.methodNotAllowed) return send(res, entry, 405, fail(`Method ${req.method} not allowed`, t0));

    const hasBody = raw.length > 0;
    const problems = [];
    let body;
    const rbContent = (route.operation.op.requestBody || {}).content || {};
    if (hasBody && rbContent['multipart/form-data']) {
      const ctype = String(req.headers['content-type'] || '');
      const m = /^multipart\/form-data;\s*boundary="?([^";]+)"?/i.exec(ctype);
      if (!m) problems.push(`content-type ${ctype || '(none)'} is not multipart/form-data with a boundary`);
      else body = parseMultipart(raw, m[1]);
    } else if (hasBody) {
      const ctype = String(req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
      if (ctype !== 'application/json') problems.push(`content-type ${ctype || '(none)'} is not application/json`);
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch (e) {
        problems.push(`body is not JSON: ${e.message}`);
      }
    }
    if (!problems.length) problems.push(...c.checkRequest(route.operation, url.searchParams, body, hasBody));
    if (problems.length) {
      invalidRequests++;
      invalid.push({ method: req.method, path: pathname, problems });
      const out = fail(`Format error in JSON body: ${problems.join('; ')}`, t0);
      out.status.errors = problems;
      return send(res, entry, 400, out);
    }
    let result;
    try {
      result = operate(route.operation.template, req.method, route.params, url.searchParams, body || {});
    } catch (e) {
      if (!(e instanceof HttpError)) throw e;
      return send(res, entry, e.status, fail(e.message, t0));
    }
    if (result && Buffer.isBuffer(result.binary)) {
      entry.status = 200;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': result.binary.length });
      return res.end(result.binary);
    }
    const reply = ok(result, t0);
    const replyProblems = c.checkReply(route.operation, 200, reply);
    if (replyProblems.length) {
      invalidReplies++;
      invalid.push({ method: req.method, path: pathname, reply: true, problems: replyProblems });
    }
    return send(res, entry, 200, reply);
  }

  const { server, listen, listenStable, unlisten, dropConnections } = stubServer((req, res) => {
    const t0 = performance.now();
    const entry = { method: req.method, path: req.url.split('?')[0], url: req.url, status: null };
    requests.push(entry);
    readBody(req, MAX_BODY, (raw) => {
      if (current === 'hang') return; // never answered; sockets are destroyed on a mode switch
      if (!raw) return send(res, entry, 413, fail('Payload too large', t0));
      const go = () => {
        try {
          answer(req, res, entry, raw, t0);
        } catch (e) {
          send(res, entry, 500, fail(`Service internal error: ${e.message}`, t0));
        }
      };
      if (current === 'slow' && slowMs > 0) setTimeout(go, slowMs).unref();
      else go();
    });
  });

  const boundPort = await listenStable(port);
  if (current === 'down') await unlisten();

  const col = (name) => store.get(name);
  const sortedPoints = (points) =>
    points
      .map((p) => ({ id: p.id, vector: p.vector.slice(), payload: structuredClone(p.payload) }))
      .sort((a, b) => (a.payload.chunk_index ?? 0) - (b.payload.chunk_index ?? 0) || String(a.id).localeCompare(String(b.id)));

  return {
    get url() {
      return `http://127.0.0.1:${boundPort}`;
    },
    get port() {
      return boundPort;
    },
    get mode() {
      return current;
    },
    /** Requests that did not conform to the contract (answered 400). */
    get invalidRequests() {
      return invalidRequests;
    },
    /** Replies of the stand-in itself that did not conform to the contract (a stand-in bug). */
    get invalidReplies() {
      return invalidReplies;
    },
    /** Details of both: {method, path, problems, reply?}. */
    invalid,
    /** Every request: {method, path, url, status}. */
    requests,
    /** Read-only views for assertions. */
    collections: {
      names: () => [...store.keys()],
      has: (name) => store.has(name),
      dim: (name) => col(name)?.dim,
      distance: (name) => col(name)?.distance,
      indexes: (name) => Object.fromEntries(col(name)?.indexes ?? []),
      /** Number of points in the collection (0 when it does not exist). */
      count: (name) => col(name)?.points.size ?? 0,
      /** {name: point count} for every collection. */
      counts: () => Object.fromEntries([...store].map(([n, c2]) => [n, c2.points.size])),
      /** Points whose payload document_id is documentId, by chunk_index. */
      pointsOf: (name, documentId) =>
        sortedPoints([...(col(name)?.points.values() ?? [])].filter((p) => p.payload.document_id === documentId)),
      /** Every point of the collection, by chunk_index. */
      points: (name) => sortedPoints([...(col(name)?.points.values() ?? [])]),
      /** Removes every collection. */
      clear: () => store.clear(),
      /** Set-up: an empty collection of dim vectors (what Almanac's worker would create). */
      create: (name, dim, distance = 'Cosine') =>
        store.set(name, { dim, distance, points: new Map(), indexes: new Map(), opId: 0 }),
    },
    /** GET /readyz requests so far (the api's qdrant readiness check sends one a round). */
    get readyzCount() {
      return requests.filter((r) => r.method === 'GET' && r.path === '/readyz').length;
    },
    /** 'ok' | 'down' | 'hang' | 'error' | 'reject' | 'notready' | 'slow' (with {ms}); resolves once in effect. */
    async setMode(m, { ms: delay } = {}) {
      if (!MODES.has(m)) throw new Error(`unknown mode ${m}`);
      const prev = current;
      current = m;
      if (m === 'slow') slowMs = delay ?? slowMs ?? 0;
      if (m === 'down') {
        await unlisten();
        return;
      }
      if (prev === 'hang') dropConnections();
      if (!server.listening) await listen(boundPort);
    },
    async close() {
      current = 'down';
      await unlisten();
    },
  };
}
