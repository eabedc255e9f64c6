/* SPDX-License-Identifier: Apache-2.0 */
// The whole of Almanac for the browser tests: real PostgreSQL and Redis, the Qdrant
// stand-in, `almanac migrate`, an administrator and a user, api + worker + beat, and nginx
// serving the built frontend with frontend/nginx/ proxying /api/ to the api.
//
// Reuses the integration tests' helpers (tests/lib/). nginx runs as a non-root user: as
// the current user, or as www-data when the tests run as root.

import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { startPostgres, startRedis, freePort, sleep } from '../../../tests/lib/services.mjs';
import { startAlmanac, startProbed, migrate, createUser, httpRequest, waitFor } from '../../../tests/lib/almanac.mjs';
import { startQdrantStandin } from '../../../tests/lib/qdrant-standin.mjs';
import { PASSWORD } from '../../../tests/lib/apiclient.mjs';

export { PASSWORD };

export const LAPTOP = { width: 1366, height: 860 };
const CHROMIUM = process.env.ALMANAC_CHROMIUM || '/usr/bin/chromium';

/** Debian's Chromium, headless; playwright gives each launch a fresh, temporary profile
 * (user data dir). The flags keep it off the network this machine closes. */
export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A laptop-sized page of the stack, signed in as email with the tests' password, on the
 * knowledge base list. */
export async function signedInPage(browser, stack, email) {
  const ctx = await browser.newContext({ viewport: LAPTOP, baseURL: stack.url });
  ctx.setDefaultTimeout(15000);
  const page = await ctx.newPage();
  await page.goto('/#/signin');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'Knowledge bases', level: 1 }).waitFor();
  return page;
}

export const FRONTEND = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const REPO = path.resolve(FRONTEND, '..');
const JWT_SECRET = 'e2e-tests-jwt-secret-0123456789abcdef-xyz';
const IS_ROOT = process.getuid && process.getuid() === 0;
const NGINX = process.env.ALMANAC_NGINX_BIN || '/usr/sbin/nginx';

/** Builds frontend/dist (npm run build), unless ALMANAC_E2E_SKIP_BUILD=1. */
export function buildFrontend() {
  if (process.env.ALMANAC_E2E_SKIP_BUILD === '1' && fs.existsSync(path.join(FRONTEND, 'dist', 'index.html'))) return;
  const r = spawnSync('npm', ['run', 'build', '--silent'], { cwd: FRONTEND, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`frontend build failed:\n${r.stdout}${r.stderr}`);
}

function userIds(name) {
  return {
    uid: Number(execFileSync('id', ['-u', name]).toString().trim()),
    gid: Number(execFileSync('id', ['-g', name]).toString().trim()),
  };
}

/**
 * nginx with the project's config rendered by frontend/nginx/render.sh into a fresh
 * prefix; the built site is copied into it. Resolves {url, port, prefix, stop(), log()}.
 */
export async function startNginx({ apiUpstream, maxUploadBytes, env = {} }) {
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'almanac-nginx-'));
  const html = path.join(prefix, 'html');
  fs.cpSync(path.join(FRONTEND, 'dist'), html, { recursive: true });
  let port = 0;
  let child = null;
  const errFile = path.join(prefix, 'error.log');
  for (let attempt = 0; attempt < 4; attempt++) {
    port = await freePort();
    const r = spawnSync(path.join(FRONTEND, 'nginx', 'render.sh'), [prefix], {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        ALMANAC_UI_LISTEN: `127.0.0.1:${port}`,
        ALMANAC_UI_ROOT: html,
        ALMANAC_API_UPSTREAM: apiUpstream,
        ALMANAC_MAX_UPLOAD_BYTES: String(maxUploadBytes),
        ALMANAC_NGINX_ACCESS_LOG: path.join(prefix, 'access.log'),
        ...env,
      },
    });
    if (r.status !== 0) throw new Error(`render.sh: ${r.stderr}`);
    const ids = IS_ROOT ? userIds('www-data') : null;
    if (ids) execFileSync('chown', ['-R', `${ids.uid}:${ids.gid}`, prefix]);
    fs.chmodSync(prefix, 0o755);
    const fd = fs.openSync(errFile, 'a');
    child = spawn(NGINX, ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-e', 'stderr', '-g', 'daemon off;'], {
      stdio: ['ignore', fd, fd],
      detached: true,
      ...(ids || {}),
    });
    fs.closeSync(fd);
    child.unref();
    const pid = child.pid;
    process.on('exit', () => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    });
    try {
      await waitFor(
        async () => {
          if (child.exitCode !== null) throw new Error(`nginx exited:\n${fs.readFileSync(errFile, 'utf8')}`);
          return (await httpRequest(`http://127.0.0.1:${port}/healthz`, { timeoutMs: 500 }).catch(() => ({}))).status === 200;
        },
        { timeoutMs: 10000, what: 'nginx /healthz' },
      );
      break;
    } catch (e) {
      if (attempt < 3 && /Address already in use/.test(fs.readFileSync(errFile, 'utf8'))) continue;
      throw e;
    }
  }
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    prefix,
    log: () => fs.readFileSync(errFile, 'utf8'),
    async stop() {
      if (!child || child.exitCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        return;
      }
      for (let i = 0; i < 100 && child.exitCode === null && child.signalCode === null; i++) await sleep(50);
      if (process.env.ALMANAC_TEST_KEEP !== '1') fs.rmSync(prefix, { recursive: true, force: true });
    },
  };
}

/** Everything up and answering. maxUploadBytes goes to the api and to nginx alike; apiEnv to the api only. */
export async function startStack({ maxUploadBytes = 4096, apiEnv = {} } = {}) {
  const pg = await startPostgres();
  const redis = await startRedis();
  const qdrant = await startQdrantStandin();
  const env = {
    ALMANAC_DATABASE_URL: pg.url,
    ALMANAC_REDIS_URL: redis.url,
    ALMANAC_JWT_SECRET: JWT_SECRET,
    ALMANAC_QDRANT_URL: qdrant.url,
    ALMANAC_READY_REQUIRED: 'postgres,redis,qdrant',
    ALMANAC_READY_CACHE_MS: '200',
    ALMANAC_SHUTDOWN_DELAY_MS: '0',
    ALMANAC_HEARTBEAT_MS: '1000',
    ALMANAC_MAX_UPLOAD_BYTES: String(maxUploadBytes),
    ALMANAC_TRUST_PROXY: 'true',
    ALMANAC_LOG_LEVEL: 'warn',
  };
  await migrate(env);
  for (const [email, admin] of [
    ['admin@example.org', true],
    ['alice@example.org', false],
    ['locked@example.org', false],
  ]) {
    await createUser(env, email, PASSWORD, { admin });
  }
  const api = await startAlmanac(['api'], { env: { ...env, ...apiEnv } });
  const procs = [];
  for (const role of ['worker', 'beat']) procs.push(await startProbed(role, env, { healthRequestMs: 1000 }));
  buildFrontend();
  const nginx = await startNginx({ apiUpstream: `127.0.0.1:${api.port}`, maxUploadBytes });
  return {
    pg,
    redis,
    qdrant,
    api,
    nginx,
    url: nginx.url,
    env,
    async stop() {
      await nginx.stop();
      for (const p of procs) await p.stop();
      await api.stop();
      await qdrant.close();
      await redis.stop();
      await pg.stop();
    },
  };
}
