/* SPDX-License-Identifier: Apache-2.0 */
// Hostile clients for bench/http.sh, on loopback only, bounded in count and time.
//
//   node bench/front_door.mjs probe N URL...
//       N rounds of sequential GETs, one of each URL in turn, each on a fresh connection
//       as an orchestrator's probe is; interleaved, so that every URL is timed under the
//       same conditions. Prints one figure per URL, keyed by its path without the leading
//       slash: {"health": {"n","p50_ms","p99_ms","max_ms","errors"}, ...}.
//   node bench/front_door.mjs slow PORT COUNT
//       holds COUNT slow connections to 127.0.0.1:PORT (from 127.0.10.x source addresses,
//       at most 100 per address), each sending one byte of a never-ending request head
//       every 2 s; a connection the server cuts is opened again. Prints "ready N" once
//       COUNT are open, then "open N" every second, until stdin closes.
//   node bench/front_door.mjs flood PORT PATH N BYTES PID
//       N unauthenticated uploads of BYTES each at once (each stops writing once
//       answered); prints {"statuses", "rss_peak_kb"} with the peak VmRSS of process
//       PID sampled every 20 ms meanwhile.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';

const [mode, ...args] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function usage() {
  console.error('usage: front_door.mjs probe N URL... | slow PORT COUNT | flood PORT PATH N BYTES PID');
  process.exit(64);
}

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

/** One GET on a fresh connection: its time in ms and whether it answered 200. */
function get(url) {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const done = (ok) => resolve({ ms: performance.now() - t0, ok });
    const req = http.get(url, { agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => done(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => done(false));
  });
}

async function probe(n, urls) {
  if (!(n >= 1) || urls.length === 0) usage();
  const lat = urls.map(() => []);
  const errors = urls.map(() => 0);
  for (let i = 0; i < n; i++) {
    for (let u = 0; u < urls.length; u++) {
      const { ms, ok } = await get(urls[u]);
      lat[u].push(ms);
      if (!ok) errors[u]++;
    }
  }
  const r = (v) => Math.round(v * 100) / 100;
  const out = {};
  urls.forEach((url, u) => {
    const l = lat[u].sort((a, b) => a - b);
    out[new URL(url).pathname.slice(1)] = { n, p50_ms: r(pct(l, 0.5)), p99_ms: r(pct(l, 0.99)), max_ms: r(l[l.length - 1]), errors: errors[u] };
  });
  console.log(JSON.stringify(out));
}

async function slow(port, count) {
  const head = 'GET /health HTTP/1.1\r\nHost: bench\r\nX-Slow: ';
  let open = 0;
  let stopping = false;
  const sockets = new Set();
  const one = (i) => {
    if (stopping) return;
    const s = net.connect({ host: '127.0.0.1', port, localAddress: `127.0.10.${1 + Math.floor(i / 100)}` });
    let k = 0;
    let timer = null;
    sockets.add(s);
    s.on('connect', () => {
      open++;
      s.write(head.slice(0, 8));
      timer = setInterval(() => s.write(head[8 + (k++ % (head.length - 8))]), 2000);
    });
    s.on('error', () => {});
    s.on('close', (hadConnected) => {
      if (timer) {
        clearInterval(timer);
        open--;
      }
      sockets.delete(s);
      void hadConnected;
      setTimeout(() => one(i), 50); // cut by the server: come back, as an attacker would
    });
  };
  for (let i = 0; i < count; i++) {
    one(i);
    if (i % 200 === 199) await sleep(20);
  }
  while (open < count) await sleep(50);
  console.log(`ready ${open}`);
  const tick = setInterval(() => console.log(`open ${open}`), 1000);
  process.stdin.resume();
  process.stdin.on('end', () => {
    stopping = true;
    clearInterval(tick);
    for (const s of sockets) s.destroy();
    process.exit(0);
  });
}

async function flood(port, path, n, bytes, pid) {
  const rss = () => {
    try {
      return Number(/^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
    } catch {
      return 0;
    }
  };
  let peak = rss();
  const sampler = setInterval(() => (peak = Math.max(peak, rss())), 20);
  const chunk = Buffer.alloc(1024 * 1024, 'x');
  const statuses = {};
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      new Promise((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port, localAddress: `127.0.20.${1 + (i % 200)}`, allowHalfOpen: true });
        let got = '';
        s.setTimeout(30000, () => s.destroy());
        s.on('data', (c) => (got += c.toString('latin1')));
        s.on('error', () => {});
        s.on('close', () => {
          const k = /^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] || 'none';
          statuses[k] = (statuses[k] || 0) + 1;
          resolve();
        });
        s.on('connect', async () => {
          s.write(`POST ${path} HTTP/1.1\r\nHost: bench\r\nContent-Type: text/plain\r\nX-Filename: a.txt\r\nContent-Length: ${bytes}\r\n\r\n`);
          for (let sent = 0; sent < bytes && !got && !s.destroyed; sent += chunk.length) {
            await new Promise((r) => s.write(chunk.subarray(0, Math.min(chunk.length, bytes - sent)), r));
          }
          if (!s.destroyed) s.end();
        });
      }),
    ),
  );
  clearInterval(sampler);
  peak = Math.max(peak, rss());
  console.log(JSON.stringify({ statuses, rss_peak_kb: peak }));
}

if (mode === 'probe') await probe(Number(args[0]), args.slice(1));
else if (mode === 'slow') await slow(Number(args[0]), Number(args[1]));
else if (mode === 'flood') await flood(Number(args[0]), args[1], Number(args[2]), Number(args[3]), Number(args[4]));
else usage();
