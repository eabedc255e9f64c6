/* SPDX-License-Identifier: Apache-2.0 */
// Run the `almanac` binary from tests: long-running services (startAlmanac, and
// startProbed for a worker or a beat), one-shot commands (runAlmanac, migrate and
// createUser), plus small HTTP and timing helpers.
//
// The binary is $ALMANAC_BIN, or build/almanac under the repository root (or the `bin`
// option: another release's binary, for upgrade tests); a missing one fails the test
// that launches it (requireBinary). Children get a clean environment: PATH, the sanitizer option variables when set, and
// whatever the test passes. Every started process is killed when the test process
// exits.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { asOwner, freePort, sleep } from './services.mjs';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ALMANAC_BIN = process.env.ALMANAC_BIN
  ? path.resolve(process.env.ALMANAC_BIN)
  : path.join(REPO_ROOT, 'build', 'almanac');

/**
 * Throws, saying what to do, unless bin is an executable file: a test whose binary is
 * missing or wrong fails loudly, it is never skipped. Every launch checks it.
 */
export function requireBinary(bin = ALMANAC_BIN) {
  let why = null;
  try {
    fs.accessSync(bin, fs.constants.X_OK);
    if (!fs.statSync(bin).isFile()) why = 'not a file';
  } catch (e) {
    why = e.code === 'ENOENT' ? 'no such file' : `not executable (${e.code})`;
  }
  if (why) {
    throw new Error(`the almanac binary ${bin}: ${why}. Build it (scripts/build.sh --asan) or set ALMANAC_BIN to a built binary.`);
  }
}

const children = new Set();
let cleanupRegistered = false;
function registerCleanup() {
  if (cleanupRegistered) return;
  cleanupRegistered = true;
  process.on('exit', () => {
    for (const c of children) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* ignore */
      }
    }
  });
}

function baseEnv(extra = {}) {
  const env = { PATH: process.env.PATH || '/usr/local/bin:/usr/bin:/bin' };
  for (const k of ['ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'TSAN_OPTIONS', 'MSAN_OPTIONS', 'LLVM_PROFILE_FILE']) {
    if (process.env[k] !== undefined) env[k] = process.env[k];
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined || v === null) delete env[k];
    else env[k] = String(v);
  }
  return env;
}

/** {value, ms}: run fn (sync or async) and measure its wall time. */
export async function timed(fn) {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

/**
 * One HTTP request over a fresh connection (no keep-alive pooling).
 * Resolves {status, headers, body, json, ms}; rejects on network error or timeout.
 */
export function httpRequest(url, { method = 'GET', headers = {}, body, timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const text = raw.toString('utf8');
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({
          status: res.statusCode,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: text,
          raw,
          json,
          complete: res.complete,
          ms: performance.now() - t0,
        });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${url}`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Poll fn() until it returns a truthy value; returns that value or throws after timeoutMs. */
export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(intervalMs);
  }
}

/** True if something accepts TCP connections on 127.0.0.1:port. */
export function canConnect(port, timeoutMs = 300) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.on('connect', () => done(true));
    s.on('error', () => done(false));
  });
}

/**
 * Start a long-running almanac command (e.g. ['api']), under the wrapper command `via`
 * when given.
 * Unless env.ALMANAC_LISTEN is given, a free loopback port is picked; so is the api's
 * probe listener (ALMANAC_PROBE_LISTEN, then inst.probeUrl) unless given.
 * With waitHealth (default), resolves once GET /health answers 200 (15 s max).
 * bin: another binary than ALMANAC_BIN.
 */
export async function startAlmanac(args = ['api'], { env = {}, waitHealth = true, healthTimeoutMs = 15000, via = [], bin = ALMANAC_BIN } = {}) {
  registerCleanup();
  const givenListen = env.ALMANAC_LISTEN;
  for (let attempt = 0; ; attempt++) {
    const port = givenListen ? Number(String(givenListen).split(':').pop()) : await freePort();
    const listen = givenListen || `127.0.0.1:${port}`;
    const extra = {};
    if (args[0] === 'api' && env.ALMANAC_PROBE_LISTEN === undefined) {
      extra.ALMANAC_PROBE_LISTEN = `127.0.0.1:${await freePort()}`;
    }
    const inst = launch(args, { ...env, ...extra, ALMANAC_LISTEN: listen }, port, via, bin);
    const probe = extra.ALMANAC_PROBE_LISTEN || env.ALMANAC_PROBE_LISTEN;
    if (args[0] === 'api' && probe) inst.probeUrl = `http://127.0.0.1:${String(probe).split(':').pop()}`;
    if (!waitHealth) return inst;
    try {
      await inst.waitHealthy(healthTimeoutMs);
      return inst;
    } catch (e) {
      const out = inst.output();
      await inst.stop();
      // Someone took the port between freePort() and bind(): try another one.
      if (!givenListen && attempt < 3 && /address already in use|EADDRINUSE/i.test(out)) continue;
      throw e;
    }
  }
}

/** via: a wrapper command and its arguments (e.g. strace), the binary and args after them. */
function launch(args, env, port, via = [], bin = ALMANAC_BIN) {
  requireBinary(bin);
  const [cmd, ...argv] = [...via, bin, ...args];
  const proc = spawn(cmd, argv, {
    env: baseEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  // Never keep the test process alive because of a forgotten service.
  proc.unref();
  proc.stdout.unref();
  proc.stderr.unref();
  const out = { stdout: [], stderr: [], all: [] };
  let exitInfo = null;
  let spawnError = null;
  const exitWaiters = [];
  proc.stdout.on('data', (c) => {
    out.stdout.push(c);
    out.all.push(c);
  });
  proc.stderr.on('data', (c) => {
    out.stderr.push(c);
    out.all.push(c);
  });
  proc.on('error', (e) => {
    spawnError = e;
    if (!exitInfo) {
      exitInfo = { code: null, signal: null, error: e };
      children.delete(proc);
      exitWaiters.splice(0).forEach((w) => w(exitInfo));
    }
  });
  // 'close' (not 'exit') so all output has been read when waitExit resolves.
  proc.on('close', (code, signal) => {
    children.delete(proc);
    if (!exitInfo) exitInfo = { code, signal };
    exitWaiters.splice(0).forEach((w) => w(exitInfo));
  });

  const text = (arr) => Buffer.concat(arr).toString('utf8');
  const url = `http://127.0.0.1:${port}`;
  const inst = {
    url,
    port,
    proc,
    get pid() {
      return proc.pid;
    },
    output: () => text(out.all),
    stdout: () => text(out.stdout),
    stderr: () => text(out.stderr),
    /** Parsed JSON lines of stdout (lines that are not JSON are skipped). */
    logLines() {
      const lines = [];
      for (const l of text(out.stdout).split('\n')) {
        if (!l.trim()) continue;
        try {
          lines.push(JSON.parse(l));
        } catch {
          /* not a JSON line */
        }
      }
      return lines;
    },
    get exited() {
      return exitInfo !== null;
    },
    signal(sig) {
      if (exitInfo) return false;
      try {
        return proc.kill(sig);
      } catch {
        return false;
      }
    },
    /** Resolves {code, signal}; rejects if the process is still running after timeoutMs. */
    waitExit(timeoutMs = 10000) {
      if (exitInfo) return Promise.resolve(exitInfo);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          const i = exitWaiters.indexOf(done);
          if (i >= 0) exitWaiters.splice(i, 1);
          reject(new Error(`almanac ${args.join(' ')} still running after ${timeoutMs} ms; output:\n${inst.output()}`));
        }, timeoutMs);
        const done = (info) => {
          clearTimeout(t);
          resolve(info);
        };
        exitWaiters.push(done);
      });
    },
    async waitHealthy(timeoutMs = 15000) {
      const deadline = Date.now() + timeoutMs;
      let last = 'no answer';
      for (;;) {
        if (spawnError) throw new Error(`cannot start ${ALMANAC_BIN}: ${spawnError.message}`);
        if (exitInfo) {
          throw new Error(
            `almanac ${args.join(' ')} exited (code ${exitInfo.code}, signal ${exitInfo.signal}) before /health answered; output:\n${inst.output()}`,
          );
        }
        try {
          const r = await httpRequest(`${url}/health`, { timeoutMs: 1000 });
          if (r.status === 200) return;
          last = `HTTP ${r.status} ${r.body}`;
        } catch (e) {
          last = e.message;
        }
        if (Date.now() > deadline) {
          throw new Error(`almanac /health not 200 after ${timeoutMs} ms (last: ${last}); output:\n${inst.output()}`);
        }
        await sleep(50);
      }
    },
    /** Kill (SIGKILL) if still running and wait for it. Safe to call repeatedly. */
    async stop() {
      if (exitInfo) return exitInfo;
      inst.signal('SIGCONT');
      inst.signal('SIGKILL');
      return inst.waitExit(10000);
    },
  };
  return inst;
}

/**
 * Start `almanac worker` or `almanac beat` (role) with its probe listener on a free port;
 * the instance gets probeUrl, probe(path), metrics() and events(name). With waitHealthy
 * (default), resolves once the probe's /health answers 200 (30 s max, each request
 * healthRequestMs at most); throws at once when the process exits meanwhile.
 */
export async function startProbed(role, env = {}, { waitHealthy = true, healthRequestMs = 5000, bin = ALMANAC_BIN } = {}) {
  const probe = await freePort();
  const inst = await startAlmanac([role], {
    env: { ...env, ALMANAC_PROBE_LISTEN: `127.0.0.1:${probe}` },
    waitHealth: false,
    bin,
  });
  inst.probeUrl = `http://127.0.0.1:${probe}`;
  inst.probe = (p) => httpRequest(`${inst.probeUrl}${p}`, { timeoutMs: 5000 });
  inst.metrics = async () => (await inst.probe('/metrics')).body;
  inst.events = (name) => inst.logLines().filter((l) => l.event === name);
  if (waitHealthy) {
    await waitFor(
      async () => {
        if (inst.exited) throw new Error(`${role} exited:\n${inst.output()}`);
        return (await httpRequest(`${inst.probeUrl}/health`, { timeoutMs: healthRequestMs })).status === 200;
      },
      { timeoutMs: 30000, what: `${role} /health` },
    );
  }
  return inst;
}

/** Run a one-shot almanac command: {code, signal, stdout, stderr}. */
export function runAlmanac(args = [], { env = {}, input, timeoutMs = 20000, bin = ALMANAC_BIN } = {}) {
  registerCleanup();
  return new Promise((resolve, reject) => {
    requireBinary(bin);
    const proc = spawn(bin, args, {
      env: baseEnv(env),
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    children.add(proc);
    const so = [];
    const se = [];
    proc.stdout.on('data', (c) => so.push(c));
    proc.stderr.on('data', (c) => se.push(c));
    const t = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`almanac ${args.join(' ')} did not finish in ${timeoutMs} ms`));
    }, timeoutMs);
    proc.on('error', (e) => {
      clearTimeout(t);
      children.delete(proc);
      reject(e);
    });
    proc.on('close', (code, signal) => {
      clearTimeout(t);
      children.delete(proc);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(so).toString('utf8'),
        stderr: Buffer.concat(se).toString('utf8'),
      });
    });
    if (input !== undefined) proc.stdin.end(input);
  });
}

/**
 * `almanac migrate [args]` as the owner role (production's migration Job does the same):
 * asserts that it exits 0; resolves to its result.
 */
export async function migrate(env, args = [], { bin } = {}) {
  const r = await runAlmanac(['migrate', ...args], { env: { ...env, ALMANAC_DATABASE_URL: asOwner(env.ALMANAC_DATABASE_URL) }, bin, timeoutMs: 60000 });
  assert.equal(r.code, 0, `migrate ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r;
}

/** `almanac user create --email email [--admin]`, the password on stdin: asserts that it exits 0. */
export async function createUser(env, email, password, { admin = false } = {}) {
  const args = ['user', 'create', '--email', email];
  if (admin) args.push('--admin');
  const r = await runAlmanac(args, { env, input: `${password}\n` });
  assert.equal(r.code, 0, `user create: ${r.stderr}`);
}
