/* SPDX-License-Identifier: Apache-2.0 */
// Throw-away PostgreSQL and Redis instances for Almanac's integration tests.
//
// Each instance listens on a free loopback port and lives in a fresh temp dir.
// PostgreSQL's initdb runs once per process into a template dir that is copied
// (`cp -a`) for every new instance. PostgreSQL refuses to run as root, so when the
// tests run as root its processes run as the `postgres` user (spawned with that
// uid/gid, so the pid we hold is the postmaster itself, not a wrapper).
//
// Every process is started as its own process group leader: freeze()/thaw()/
// kill9() signal the whole group, so PostgreSQL backends that already hold a
// connection from the service under test are frozen too. Everything still running
// is thawed and killed when the test process exits.
//
// PostgreSQL has the roles of production (infrastructure/k8s/overlays/all-in-one/initdb/):
// almanac_owner (the bootstrap superuser here) owns the schema and runs the migrations;
// `almanac`, the application role of pg.url, reads and writes rows but has no DDL
// rights, so a service that needs one fails its test as it would fail in production.
// migrate() of lib/almanac.mjs and pg.ownerUrl connect as the owner.

import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const PG_BIN = process.env.ALMANAC_PG_BIN || findPgBin();
const KEEP = process.env.ALMANAC_TEST_KEEP === '1';
const PG_OWNER = 'almanac_owner';
const PG_APP = 'almanac';
const APP_ROLE_SQL = path.join(
  path.dirname(new URL(import.meta.url).pathname),
  '..', '..', 'infrastructure', 'k8s', 'overlays', 'all-in-one', 'initdb', '20-app-role.sql',
);
const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;

function findPgBin() {
  const base = '/usr/lib/postgresql';
  try {
    const versions = fs
      .readdirSync(base)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const dir = path.join(base, v, 'bin');
      if (fs.existsSync(path.join(dir, 'postgres'))) return dir;
    }
  } catch {
    /* fall through */
  }
  return path.join(base, '15', 'bin');
}

// ---------------------------------------------------------------- cleanup

const live = new Set(); // {pid, group:boolean}
const tempDirs = new Set();

/** Pids of all descendants of pid (from /proc), children before grandchildren. */
function descendants(pid) {
  const children = new Map();
  let entries = [];
  try {
    entries = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return [];
  }
  for (const e of entries) {
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid ...; comm may contain spaces and parentheses.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(rest[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(e));
  }
  const out = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift();
    for (const c of children.get(p) || []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

function signalOne(pid, sig) {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Signal pid, its process group and every descendant. PostgreSQL backends call
 * setsid(), so they are not in the postmaster's group: the group alone is not enough.
 * The root is signalled first so that (when stopping) it cannot fork new children.
 */
function signalGroup(pid, sig) {
  // Collect first: once the root dies its children are re-parented and lost to us.
  const kids = descendants(pid);
  const ok = signalOne(pid, sig);
  try {
    process.kill(-pid, sig);
  } catch {
    /* not a group leader, or the group is gone */
  }
  for (const c of kids) signalOne(c, sig);
  if (sig === 'SIGSTOP') for (const c of descendants(pid)) signalOne(c, sig); // forked meanwhile
  return kids;
}

async function waitPidsGone(pids, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (const p of pids) {
    while (isAlive(p) && Date.now() < deadline) await sleep(20);
  }
}

function cleanupAll() {
  for (const p of live) {
    signalGroup(p.pid, 'SIGCONT');
    signalGroup(p.pid, 'SIGKILL');
  }
  live.clear();
  if (!KEEP) {
    for (const d of tempDirs) {
      try {
        fs.rmSync(d, { recursive: true, force: true });
      } catch {
        /* ignore */
      }
    }
  }
  tempDirs.clear();
}

let cleanupRegistered = false;
function registerCleanup() {
  if (cleanupRegistered) return;
  cleanupRegistered = true;
  process.on('exit', cleanupAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      cleanupAll();
      process.exit(128 + (os.constants.signals[sig] || 1));
    });
  }
}

// ---------------------------------------------------------------- helpers

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Ports are taken outside the kernel's ephemeral range (ip_local_port_range), so that
 * neither bind(0) nor an outgoing connection of another process can take a service's
 * port while the service is stopped for a test and is about to start again on it.
 */
function portRange() {
  let lo = 32768;
  let hi = 60999;
  try {
    [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  } catch {
    /* defaults */
  }
  if (lo - 1 - 10000 >= 2000) return [10000, lo - 1];
  if (65000 - (hi + 1) >= 2000) return [hi + 1, 65000];
  return null; // no room outside the ephemeral range: let the kernel pick
}

function tryListen(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(0));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort() {
  const range = portRange();
  if (range) {
    const [lo, hi] = range;
    for (let i = 0; i < 100; i++) {
      const port = lo + Math.floor(Math.random() * (hi - lo + 1));
      if (await tryListen(port)) return port;
    }
  }
  const p = await tryListen(0);
  if (!p) throw new Error('no free port on 127.0.0.1');
  return p;
}

let pgIds = null;
function postgresIds() {
  if (!IS_ROOT) return null;
  if (!pgIds) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    pgIds = { uid, gid };
  }
  return pgIds;
}

function chownR(dir) {
  const ids = postgresIds();
  if (ids) execFileSync('chown', ['-R', `${ids.uid}:${ids.gid}`, dir]);
}

function makeTempDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(d);
  if (IS_ROOT) {
    // The postgres user must be able to traverse the dir (sockets, data dir).
    fs.chmodSync(d, 0o755);
    chownR(d);
  }
  return d;
}

/** Options for running a PostgreSQL binary as the right user. */
function pgSpawnOpts(extra = {}) {
  const ids = postgresIds();
  const env = { PATH: process.env.PATH || '/usr/bin:/bin', LC_ALL: 'C', TZ: 'UTC' };
  return { env, ...(ids ? { uid: ids.uid, gid: ids.gid } : {}), ...extra };
}

/** True if pid exists and is not a zombie (PID 1 here may never reap orphans). */
function isAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function waitChildExit(child, timeoutMs) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Spawns a service as its own process group leader, stdout and stderr appended to
 * logFile, tracked for the cleanup at exit (and never keeping the test process alive).
 */
function spawnService(file, args, opts, logFile) {
  const fd = fs.openSync(logFile, 'a');
  const child = spawn(file, args, { ...opts, stdio: ['ignore', fd, fd], detached: true });
  fs.closeSync(fd);
  child.unref(); // never keep the test process alive; cleanup kills it on exit
  const rec = { pid: child.pid };
  live.add(rec);
  child.once('exit', () => live.delete(rec));
  return child;
}

/**
 * Runs launch(port) on a free port; when the service could not bind it (the port was
 * grabbed between freePort() and bind), on another one. Resolves to the port.
 */
async function launchOnFreePort(launch) {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      await launch(port);
      return port;
    } catch (e) {
      if (!e.bindFailure || attempt >= 4) throw e;
    }
  }
}

/**
 * Stops a service: SIGCONT (it may be frozen), then sig; SIGKILL to the whole group
 * when it has not exited after graceMs. False when it was not running.
 */
async function stopService(c, sig, graceMs) {
  if (!c || exited(c)) return false;
  signalGroup(c.pid, 'SIGCONT');
  process.kill(c.pid, sig);
  if (!(await waitChildExit(c, graceMs))) {
    signalGroup(c.pid, 'SIGKILL');
    await waitChildExit(c, 5000);
  }
  return true;
}

/** SIGKILL a service and its group; resolves to the pids of its children then. */
async function killService(c) {
  if (!c || exited(c)) return [];
  signalGroup(c.pid, 'SIGCONT');
  const kids = signalGroup(c.pid, 'SIGKILL');
  await waitChildExit(c, 5000);
  return kids;
}

/**
 * The handle of a started service (inst: {port, pid, child}; launch(port) starts it):
 * the controls PostgreSQL and Redis share, plus url, stop() and kill9() of its own.
 */
function serviceHandle(inst, { dir, logFile, launch, url, stop, kill9 }) {
  return {
    get port() {
      return inst.port;
    },
    get url() {
      return url();
    },
    dir,
    get pid() {
      return inst.pid;
    },
    stop,
    kill9,
    /** SIGSTOP the service and its children: connections hang, nothing is refused. */
    freeze() {
      if (inst.child && !exited(inst.child)) signalGroup(inst.child.pid, 'SIGSTOP');
    },
    thaw() {
      if (inst.child && !exited(inst.child)) signalGroup(inst.child.pid, 'SIGCONT');
    },
    /** Start again (after stop()/kill9()) on the same port and data dir. */
    async start() {
      if (inst.child && !exited(inst.child)) return;
      await launch(inst.port);
    },
    get running() {
      return !!inst.child && !exited(inst.child);
    },
    /** Everything the service wrote to stdout and stderr so far. */
    logText() {
      return safeRead(logFile);
    },
  };
}

// ---------------------------------------------------------------- postgres

let template = null;

function pgTemplate() {
  if (template) return template;
  registerCleanup();
  const root = makeTempDir('almanac-pgtpl-');
  const data = path.join(root, 'data');
  const opts = pgSpawnOpts({ encoding: 'utf8' });
  let r = spawnSync(
    path.join(PG_BIN, 'initdb'),
    ['-D', data, '-U', PG_OWNER, '--auth=trust', '-E', 'UTF8', '--locale=C', '-N'],
    opts,
  );
  if (r.status !== 0) throw new Error(`initdb failed (${r.status}): ${r.stderr}${r.stdout}${r.error || ''}`);
  // The database and the application role, in single-user mode.
  r = spawnSync(
    path.join(PG_BIN, 'postgres'),
    ['--single', '-D', data, '-c', 'fsync=off', 'postgres'],
    { ...opts, input: `CREATE DATABASE almanac;\nCREATE ROLE ${PG_APP} LOGIN;\n` },
  );
  if (r.status !== 0) throw new Error(`creating database almanac failed (${r.status}): ${r.stderr}${r.stdout}`);
  // The application role's rights: production's own file, one statement a line.
  const grants = fs
    .readFileSync(APP_ROLE_SQL, 'utf8')
    .replace(/--.*$/gm, '')
    .split(';')
    .map((x) => x.replace(/\s+/g, ' ').trim())
    .filter(Boolean)
    .join(';\n');
  r = spawnSync(path.join(PG_BIN, 'postgres'), ['--single', '-D', data, '-c', 'fsync=off', 'almanac'], {
    ...opts,
    input: `${grants};\n`,
  });
  if (r.status !== 0 || /ERROR/.test(r.stderr)) throw new Error(`the application role's grants failed (${r.status}): ${r.stderr}${r.stdout}`);
  template = data;
  return template;
}

async function waitPgReady(port, child, logFile, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited(child)) {
      const log = safeRead(logFile);
      const err = new Error(`postgres exited during startup (code ${child.exitCode}, signal ${child.signalCode}):\n${log}`);
      err.bindFailure = /could not (bind|create listen socket)|Address already in use/i.test(log);
      throw err;
    }
    const r = spawnSync(
      path.join(PG_BIN, 'pg_isready'),
      ['-q', '-h', '127.0.0.1', '-p', String(port), '-U', 'almanac', '-d', 'almanac', '-t', '1'],
      { env: { PATH: process.env.PATH || '/usr/bin:/bin' } },
    );
    if (r.status === 0) return;
    if (Date.now() > deadline) throw new Error(`postgres on port ${port} not ready after ${timeoutMs} ms:\n${safeRead(logFile)}`);
    await sleep(50);
  }
}

function safeRead(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Start a PostgreSQL on a free loopback port in a fresh temp dir.
 * Statement logging is on (log_statement=all) so tests can count queries via logText().
 * ssl: {cert, key} (PEM text) turns TLS on with that server certificate (tests/lib/tls.mjs).
 * settings: {name: value} passed as `-c name=value` after the defaults below, e.g.
 * {synchronous_commit: 'on'} where a test kills PostgreSQL with -9 and needs every
 * acknowledged commit to survive it.
 */
export async function startPostgres({ ssl = null, settings = {} } = {}) {
  registerCleanup();
  const tpl = pgTemplate();
  const dir = makeTempDir('almanac-pg-');
  const data = path.join(dir, 'data');
  execFileSync('cp', ['-a', tpl, data]);
  const logFile = path.join(dir, 'postgres.log');
  fs.writeFileSync(logFile, '');
  const sslArgs = [];
  if (ssl) {
    fs.writeFileSync(path.join(dir, 'server.crt'), ssl.cert);
    fs.writeFileSync(path.join(dir, 'server.key'), ssl.key, { mode: 0o600 });
    sslArgs.push('-c', 'ssl=on', '-c', `ssl_cert_file=${dir}/server.crt`, '-c', `ssl_key_file=${dir}/server.key`);
  }
  chownR(dir);

  const inst = { port: 0, url: '', dir, pid: 0, child: null, logFile };

  async function launch(port) {
    const child = spawnService(
      path.join(PG_BIN, 'postgres'),
      [
        '-D', data,
        '-p', String(port),
        '-c', 'listen_addresses=127.0.0.1',
        '-c', `unix_socket_directories=${dir}`,
        '-c', 'log_statement=all',
        '-c', 'logging_collector=off',
        '-c', 'fsync=off',
        '-c', 'synchronous_commit=off',
        '-c', 'full_page_writes=off',
        '-c', 'shared_buffers=16MB',
        '-c', 'max_connections=100',
        '-c', 'log_line_prefix=%m [%p] ',
        ...sslArgs,
        ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
      ],
      pgSpawnOpts(),
      logFile,
    );
    inst.child = child;
    inst.pid = child.pid;
    await waitPgReady(port, child, logFile);
  }

  inst.port = await launchOnFreePort(launch);
  inst.url = `postgresql://${PG_APP}@127.0.0.1:${inst.port}/almanac`;

  const handle = serviceHandle(inst, {
    dir,
    logFile,
    launch,
    url: () => inst.url,
    /** Fast shutdown (SIGINT); waits for the postmaster and its group to exit. */
    async stop() {
      const c = inst.child;
      if (await stopService(c, 'SIGINT', 15000)) await waitGroupGone(c.pid);
    },
    /** SIGKILL the postmaster and all its backends. */
    async kill9() {
      const kids = await killService(inst.child);
      await waitPidsGone(kids); // a surviving backend would block the next start
    },
  });
  /**
   * SIGKILL the postmaster alone (its pid read from postmaster.pid), as when it crashes:
   * its backends notice and exit by themselves. Resolves to the pid once they have, since
   * start() is refused a data dir whose shared memory is still attached.
   */
  handle.killPostmaster = async () => {
    const pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const kids = descendants(pid);
    process.kill(pid, 'SIGKILL');
    await waitChildExit(inst.child, 5000);
    await waitPidsGone(kids, 30000);
    return pid;
  };
  return Object.defineProperty(handle, 'ownerUrl', { get: () => asOwner(inst.url), enumerable: true });
}

/** The same PostgreSQL URL as the owner role (migrations, DDL in tests); others unchanged. */
export function asOwner(url) {
  return typeof url === 'string' ? url.replace(/^(postgres(?:ql)?:\/\/)almanac@/, `$1${PG_OWNER}@`) : url;
}

async function waitGroupGone(pgid, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return;
    }
    await sleep(20);
  }
}

/** Count the `SELECT 1` statements PostgreSQL logged (simple or extended protocol). */
export function countSelect1(logText) {
  const re = /LOG:\s+(?:statement|execute [^:]*):\s*SELECT\s+1\s*;?\s*$/gim;
  return (logText.match(re) || []).length;
}

// ---------------------------------------------------------------- redis

function redisPing(port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.on('error', () => done(false));
    // ECHO rather than PING so readiness polling does not inflate the `ping` stats.
    sock.on('connect', () => sock.write('*2\r\n$4\r\nECHO\r\n$2\r\nok\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\nok\r\n') || buf.startsWith('$2')) done(/ok/.test(buf));
      else if (buf.startsWith('-')) done(false); // e.g. -LOADING
    });
  });
}

/**
 * Start a Redis on a free loopback port in a fresh temp dir.
 * Persistence is off unless {aof:true}.
 */
/**
 * Start a Redis on a free loopback port. tls: {cert, key, ca} (PEM text, tests/lib/tls.mjs)
 * adds a TLS-only port beside the plain one (handle.tlsPort), which the plain port's
 * readiness check and the tests' own redis-cli keep using.
 */
export async function startRedis({ aof = false, tls = null } = {}) {
  registerCleanup();
  const dir = makeTempDir('almanac-redis-');
  const logFile = path.join(dir, 'redis.log');
  fs.writeFileSync(logFile, '');
  const inst = { port: 0, child: null, pid: 0, tlsPort: 0 };
  const tlsArgs = [];
  if (tls) {
    for (const [f, text] of [['server.crt', tls.cert], ['server.key', tls.key], ['ca.crt', tls.ca]])
      fs.writeFileSync(path.join(dir, f), text, { mode: 0o600 });
    inst.tlsPort = await freePort();
    tlsArgs.push('--tls-port', String(inst.tlsPort), '--tls-cert-file', path.join(dir, 'server.crt'),
      '--tls-key-file', path.join(dir, 'server.key'), '--tls-ca-cert-file', path.join(dir, 'ca.crt'),
      '--tls-auth-clients', 'no');
  }

  async function launch(port) {
    const args = [
      '--bind', '127.0.0.1',
      '--port', String(port),
      '--dir', dir,
      '--save', '',
      '--appendonly', aof ? 'yes' : 'no',
      '--daemonize', 'no',
      '--logfile', '',
      '--protected-mode', 'yes',
      ...tlsArgs,
    ];
    const child = spawnService('redis-server', args, { env: { PATH: process.env.PATH || '/usr/bin:/bin' } }, logFile);
    inst.child = child;
    inst.pid = child.pid;
    const deadline = Date.now() + 15000;
    for (;;) {
      if (exited(child)) {
        const log = safeRead(logFile);
        const err = new Error(`redis-server exited during startup (code ${child.exitCode}):\n${log}`);
        err.bindFailure = /Address already in use|Could not create server TCP/i.test(log);
        throw err;
      }
      if (await redisPing(port, 500)) return;
      if (Date.now() > deadline) throw new Error(`redis on port ${port} not ready:\n${safeRead(logFile)}`);
      await sleep(30);
    }
  }

  inst.port = await launchOnFreePort(launch);

  const handle = serviceHandle(inst, {
    dir,
    logFile,
    launch,
    url: () => `redis://127.0.0.1:${inst.port}/0`,
    async stop() {
      await stopService(inst.child, 'SIGTERM', 10000);
    },
    async kill9() {
      await killService(inst.child);
    },
  });
  return Object.defineProperty(handle, 'tlsPort', { get: () => inst.tlsPort, enumerable: true });
}

/** redis-cli against the Redis on 127.0.0.1:port: the raw reply, trimmed. */
export function redisCli(port, ...args) {
  return execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), '--raw', ...args], {
    encoding: 'utf8',
    timeout: 5000,
  }).trim();
}

/** Calls per command from `INFO commandstats`, e.g. {ping: 12, info: 3}. */
export function redisCommandStats(port) {
  const out = redisCli(port, 'INFO', 'commandstats');
  const stats = {};
  for (const line of out.split(/\r?\n/)) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (m) stats[m[1]] = Number(m[2]);
  }
  return stats;
}

export { isAlive };
