/* SPDX-License-Identifier: Apache-2.0 */
// The client's address through an Ingress: the frontend's nginx (frontend/nginx, rendered
// by render.sh as the image does) takes it from X-Forwarded-For when the peer is a
// trusted proxy (ALMANAC_NGINX_REAL_IP_FROM, as frontend.yaml sets it), and passes it to
// the api as X-Real-IP; from an untrusted peer, or with the setting empty, the header is
// ignored and the peer is the client. A real nginx, an upstream that records what it got.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { REPO } from './manifests.mjs';

const seen = [];
let upstream, upstreamPort;
const nginxes = [];

const freePort = () => new Promise((r) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => r(p));
  });
});

async function startNginx(realIpFrom) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'almanac-i14-realip-'));
  const root = path.join(dir, 'root');
  fs.mkdirSync(root);
  fs.writeFileSync(path.join(root, 'index.html'), '<html></html>');
  const port = await freePort();
  const env = { ...process.env, ALMANAC_UI_LISTEN: `127.0.0.1:${port}`, ALMANAC_UI_ROOT: root,
    ALMANAC_API_UPSTREAM: `127.0.0.1:${upstreamPort}`, ALMANAC_NGINX_REAL_IP_FROM: realIpFrom,
    ALMANAC_NGINX_ACCESS_LOG: 'off' };
  const r = spawnSync(path.join(REPO, 'frontend', 'nginx', 'render.sh'), [dir], { env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const child = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', 'stderr', '-g', 'daemon off; master_process off;'], { stdio: 'ignore' });
  nginxes.push({ child, dir });
  for (let i = 0; i < 100; i++) {
    if (await new Promise((res) => net.connect(port, '127.0.0.1').on('connect', function () { this.destroy(); res(true); }).on('error', () => res(false)))) return port;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error('nginx did not start');
}

function get(port, xff) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/api/v1/whoami', headers: xff ? { 'X-Forwarded-For': xff } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve(seen.at(-1)));
    });
    req.on('error', reject);
  });
}

before(async () => {
  upstream = http.createServer((req, res) => {
    seen.push({ realIp: req.headers['x-real-ip'], xff: req.headers['x-forwarded-for'] });
    res.end('{}');
  });
  await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamPort = upstream.address().port;
});
after(() => {
  for (const n of nginxes) {
    n.child.kill('SIGKILL');
    fs.rmSync(n.dir, { recursive: true, force: true });
  }
  upstream.close();
});

test('behind a trusted proxy: the client from X-Forwarded-For reaches the api as X-Real-IP', async () => {
  const port = await startNginx('127.0.0.0/8 10.0.0.0/8');
  assert.equal((await get(port, '203.0.113.5')).realIp, '203.0.113.5');
  // A client that sends its own X-Forwarded-For gets it appended to by the Ingress
  // controller: the last untrusted address counts, the forged one does not.
  assert.equal((await get(port, '198.51.100.1, 203.0.113.9')).realIp, '203.0.113.9');
  assert.equal((await get(port, '198.51.100.1, 203.0.113.9, 10.1.2.3')).realIp, '203.0.113.9', 'trusted hops are skipped');
  assert.equal((await get(port, null)).realIp, '127.0.0.1', 'no header: the peer');
});

test('without trusted proxies, or from an untrusted peer, X-Forwarded-For is ignored', async () => {
  const none = await startNginx('');
  assert.equal((await get(none, '203.0.113.5')).realIp, '127.0.0.1');
  const other = await startNginx('10.0.0.0/8');
  assert.equal((await get(other, '203.0.113.5')).realIp, '127.0.0.1', 'the peer 127.0.0.1 is not a trusted proxy');
});
