/* SPDX-License-Identifier: Apache-2.0 */
// The whole ingestion and search stack for tests, the evaluation and the benchmarks:
// PostgreSQL, Redis, the Qdrant stand-in (optional), `almanac api` and `almanac worker`,
// with a client of the api (apiclient.mjs) and psql access (psql.mjs).

import { startPostgres, startRedis } from './services.mjs';
import { startAlmanac, startProbed, migrate, createUser } from './almanac.mjs';
import { startQdrantStandin } from './qdrant-standin.mjs';
import { client, PASSWORD } from './apiclient.mjs';

export const JWT_SECRET = 'search-tests-jwt-secret-0123456789abcdef';

/**
 * The settings of every almanac process of a stack: its PostgreSQL, Redis and Qdrant
 * (q, or none), a short readiness cache and retry base, no shutdown delay; then extra.
 */
export function stackEnv(pg, redis, q, extra = {}) {
  return {
    ALMANAC_DATABASE_URL: pg.url,
    ALMANAC_REDIS_URL: redis.url,
    ALMANAC_JWT_SECRET: JWT_SECRET,
    ALMANAC_READY_REQUIRED: q ? 'postgres,redis,qdrant' : 'postgres,redis',
    ALMANAC_READY_CACHE_MS: '200',
    ALMANAC_SHUTDOWN_DELAY_MS: '0',
    ALMANAC_JOB_RETRY_BASE_MS: '200',
    ALMANAC_LOG_LEVEL: 'info',
    ...(q ? { ALMANAC_QDRANT_URL: q.url } : {}),
    ...extra,
  };
}

/**
 * Starts PostgreSQL and Redis, migrates, creates users; then the api and the worker.
 * Options: qdrant (true: a fresh stand-in; an object: that stand-in; false: none),
 * env (extra settings for both), workerEnv, apiEnv, users (emails; the first is admin-less).
 */
export async function startStack({ qdrant = true, env = {}, apiEnv = {}, workerEnv = {}, users = ['alice@example.org'], worker = true } = {}) {
  const pg = await startPostgres();
  const redis = await startRedis();
  const q = qdrant === true ? await startQdrantStandin() : qdrant || null;
  const common = stackEnv(pg, redis, q, env);
  await migrate(common);
  for (const email of users) await createUser(common, email, PASSWORD);
  const api = await startAlmanac(['api'], { env: { ...common, ...apiEnv } });
  const stack = { pg, redis, qdrant: q, env: common, api, worker: null, c: client(api) };
  stack.startWorker = async (extra = {}) => {
    const w = await startProbed('worker', { ...common, ...workerEnv, ...extra }, { healthRequestMs: 1000 });
    stack.worker = w;
    return w;
  };
  if (worker) await stack.startWorker();
  stack.stop = async () => {
    if (stack.worker) await stack.worker.stop();
    await api.stop();
    if (q && qdrant === true) await q.close();
    await redis.stop();
    await pg.stop();
  };
  return stack;
}
