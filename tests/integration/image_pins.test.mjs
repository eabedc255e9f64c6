/* SPDX-License-Identifier: Apache-2.0 */
// scripts/refresh-image-pins.sh against a loopback stand-in of Docker Hub's registry API
// (an anonymous token endpoint and HEAD /v2/<name>/manifests/<tag> answering a
// Docker-Content-Digest), on a copy of the production files: every docker.io reference
// gets its digest beside its tag, a second run replaces an old digest, --check tells
// pinned from unpinned, and a tag that does not resolve changes no file. The real
// registry is not reachable from the test machines; the script's requests are the ones
// Docker Hub documents (token with scope repository:<name>:pull, Accept of the index and
// manifest media types).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stubServer } from '../lib/httpstub.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCRIPT = path.join(ROOT, 'scripts', 'refresh-image-pins.sh');
const FILES = ['infrastructure/docker/Dockerfile', 'infrastructure/docker/Dockerfile.frontend',
  'infrastructure/docker/docker-compose.prod.yml', 'infrastructure/.env.prod.template'];
const REF = /docker\.io\/[a-z0-9._/-]+:[A-Za-z0-9._-]+(@sha256:[0-9a-f]{64})?/g;

function registry(digests) {
  const seen = [];
  const stub = stubServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/token') {
      const scope = url.searchParams.get('scope');
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ token: `tok:${scope}` }));
    }
    const m = url.pathname.match(/^\/v2\/(.+)\/manifests\/([^/]+)$/);
    const ref = m && `${m[1]}:${m[2]}`;
    seen.push({ method: req.method, ref, auth: req.headers.authorization, accept: String(req.headers.accept) });
    if (req.method !== 'HEAD' || !m || req.headers.authorization !== `Bearer tok:repository:${m[1]}:pull` || !digests[ref]) {
      res.writeHead(404);
      return res.end();
    }
    res.writeHead(200, { 'docker-content-digest': digests[ref], 'content-type': 'application/vnd.oci.image.index.v1+json' });
    res.end();
  });
  return { stub, seen };
}

// Asynchronous: the registry stand-in answers from this process's event loop.
function run(args, env) {
  return new Promise((resolve) => {
    const p = spawn('bash', [SCRIPT, ...args], { env });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const sha = (s) => `sha256:${crypto.createHash('sha256').update(s).digest('hex')}`;

function tree() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'almanac-pins-'));
  for (const f of FILES) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, f), path.join(dir, f));
  }
  return dir;
}
const refsIn = (dir) => [...new Set(FILES.flatMap((f) => fs.readFileSync(path.join(dir, f), 'utf8').match(REF) || []))];

test('refresh-image-pins pins every docker.io reference by digest beside its tag', async () => {
  const dir = tree();
  const names = refsIn(dir).map((r) => r.replace(/^docker\.io\//, '').replace(/@.*/, ''));
  assert.ok(names.length >= 5, `references found: ${names}`);
  const digests = Object.fromEntries(names.map((n) => [n, sha(`v1 ${n}`)]));
  const { stub, seen } = registry(digests);
  const port = await stub.listen(0);
  const env = { ...process.env, ALMANAC_PIN_ROOT: dir, REGISTRY_URL: `http://127.0.0.1:${port}`, AUTH_URL: `http://127.0.0.1:${port}/token` };
  try {
    let r = await run(['--check'], env);
    assert.equal(r.status, 1, 'unpinned references fail --check');
    r = await run([], env);
    assert.equal(r.status, 0, r.stderr);
    for (const ref of refsIn(dir)) {
      const name = ref.replace(/^docker\.io\//, '').replace(/@.*/, '');
      assert.equal(ref, `docker.io/${name}@${digests[name]}`, 'the tag stays, the digest is beside it');
    }
    assert.ok(seen.every((s) => s.accept.includes('application/vnd.oci.image.index.v1+json')), 'asks for the index');
    r = await run(['--check'], env);
    assert.equal(r.status, 0, r.stderr);
    // A tag republished: a second run replaces the old digest.
    for (const n of names) digests[n] = sha(`v2 ${n}`);
    r = await run([], env);
    assert.equal(r.status, 0, r.stderr);
    for (const ref of refsIn(dir)) assert.ok(ref.endsWith(digests[ref.replace(/^docker\.io\//, '').replace(/@.*/, '')]), ref);
    // A tag the registry does not know: exit 1 and no file changed.
    const before = FILES.map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
    delete digests[names[0]];
    for (const n of names.slice(1)) digests[n] = sha(`v3 ${n}`);
    r = await run([], env);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /no digest for/);
    assert.deepEqual(FILES.map((f) => fs.readFileSync(path.join(dir, f), 'utf8')), before, 'nothing written');
  } finally {
    await stub.unlisten();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
