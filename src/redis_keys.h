/* SPDX-License-Identifier: Apache-2.0 */
/* redis_keys.h: every Redis key, stream, consumer group and queue name of Almanac.
 *
 * The one place that spells them. Deployed systems hold data under these names, and
 * outside readers use some of them (the KEDA scaler reads almanac:queue:ingest; the
 * operator runbooks in docs/jobs.md name the dead-letter streams), so a name never
 * changes without moving the data. A name ending in ':' is a prefix: the part after the
 * colon is given with each. Each entry says its Redis type, who writes it, who reads it
 * and when it goes away. */
#pragma once

/* ---- Queue names ----
 * The <queue> of the per-queue keys below and the value of outbox.queue in PostgreSQL.
 * Every worker reads them all in the order of alm_queue_names (queue.c). */

/* Ingestion of uploaded, reprocessed, reindexed or requeued documents. */
#define ALM_QUEUE_INGEST "ingest"
/* Vector purges of deleted documents and knowledge bases. */
#define ALM_QUEUE_MAINTENANCE "maintenance"
/* Ingest jobs of a user who has more than 8 documents waiting already (the fair share,
 * ALM_INGEST_QUEUE_SQL in outbox.h): read after the other queues, so one user's backlog
 * never delays another user's upload by more than the jobs running and a fair share of
 * that backlog. */
#define ALM_QUEUE_INGEST_BULK "ingest_bulk"

/* ---- The job queue (queue.c) ---- */

/* Consumer group of every queue stream: one group, every worker a consumer in it.
 * Created by the workers (alm_queue_setup, at each connect); its consumers are pruned by
 * the beat (prune_consumers); the api reads it for GET /health/queues. */
#define ALM_QUEUE_GROUP "workers"

/* almanac:queue:<queue>, a stream; each entry has one field, job (the job's JSON).
 * Written by the outbox relays (api, beat, `almanac reindex`), by the promotion of due
 * retries (worker thread 0) and by dead-letter replays (`almanac jobs retry-dead`, the
 * admin api). Read by the workers (XREADGROUP, XAUTOCLAIM, renewals), by the api and
 * `almanac jobs stats` (lengths), by the beat's find_lost_jobs scan and by the KEDA
 * scaler. An entry is deleted when its job is acknowledged; the key never expires. */
#define ALM_STREAM_PREFIX "almanac:queue:"

/* almanac:delayed:<queue>, a sorted set of job JSON texts scored by due time (ms since
 * the epoch). Written by the workers (retry, put back); a worker moves due members back
 * to the stream; read by the stats and find_lost_jobs. No expiry. */
#define ALM_QUEUE_DELAYED "almanac:delayed:"

/* almanac:dead:<queue>, a stream of dead letters with fields job, error and queue, at
 * most about ALM_QUEUE_MAX_DEAD entries. Written by the workers (a job's last attempt).
 * Read by dead-letter replays (which delete what they replay), the stats and
 * find_lost_jobs; entries older than ALMANAC_DEAD_LETTER_TTL_S are trimmed by the beat. */
#define ALM_QUEUE_DEAD "almanac:dead:"

/* ---- The outbox relay (outbox.c) ---- */

/* almanac:outbox:sent:<outbox row uid>, a string "1": the row was added to its stream.
 * Set (NX) and read by the relay script in one step, so no row is enqueued twice;
 * expires after 7 days. */
#define ALM_OUTBOX_DEDUP "almanac:outbox:sent:"

/* ---- Heartbeats (heartbeat.c) ---- */

/* almanac:heartbeat:<process id>, a string: the process's heartbeat JSON. Written every
 * ALMANAC_HEARTBEAT_MS by each worker and beat, deleted when it stops; read by the api
 * (GET /health/workers, SCAN and MGET). Expires after three periods, so a dead process
 * disappears by itself. */
#define ALM_HEARTBEAT_PREFIX "almanac:heartbeat:"

/* ---- The beat (scheduler.c) ---- */

/* A string "<beat id>:<term>": the beat's leadership lease. Set by a beat taking the lead
 * (when absent), renewed by the leader, deleted by a leader that stops; read by standbys
 * (are they free to take it) and by the beat's outbox relay script (the fence). Expires
 * after ALMANAC_BEAT_LEASE_MS unless renewed. */
#define ALM_BEAT_LEADER "almanac:beat:leader"
/* A counter: the last term handed out. INCRed by each beat taking the lead, so every term
 * is new and larger. No expiry. */
#define ALM_BEAT_FENCE "almanac:beat:fence"
/* A hash: task name -> time of its last successful run (ms since the epoch). Written by
 * the leader after each task; read by a beat that takes the lead, to continue the
 * schedule. No expiry. */
#define ALM_BEAT_LAST_RUN "almanac:beat:last_run"
/* A string "<beat id>:<unix time s>". Set once (NX) by the beat's queue_epoch task and
 * read by the same task, which remembers it in PostgreSQL. It never expires: when it is
 * gone, Redis lost its data (restarted without persistence, failed over to an empty
 * replica, flushed) and every job with it. */
#define ALM_QUEUE_EPOCH "almanac:epoch"

/* ---- Rate limits (api) ---- */

/* almanac:ratelimit:login:acct:<hex BLAKE2b-128 of the lower-cased email>, a counter of
 * sign-in attempts for one account (hashed, so Redis holds no addresses). Counted by the
 * api (ratelimit.c) before each password check, deleted by a successful sign-in; expires
 * ALMANAC_LOGIN_WINDOW_S after its first count. */
#define ALM_LOGIN_LIMIT_ACCOUNT "almanac:ratelimit:login:acct:"
/* almanac:ratelimit:login:ip:<client address>, a counter of sign-in attempts from one
 * address, as the account's; a successful sign-in gives its count back. */
#define ALM_LOGIN_LIMIT_ADDRESS "almanac:ratelimit:login:ip:"
/* almanac:answers:rate:<user id>, a counter of answer requests, counted and read by the
 * api before each answer; expires one minute after its first count. */
#define ALM_ANSWER_LIMIT "almanac:answers:rate:"

/* ---- Readiness (checks.c) ---- */

/* A string "1" that /ready's redis_writes check sets (it proves Redis accepts writes);
 * nobody reads it. Expires after a minute. */
#define ALM_READY_WRITE_PROBE "almanac:ready:write"
