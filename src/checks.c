/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "checks.h"
#include "clock.h"
#include "db.h"
#include "log.h"
#include "qdrant.h"
#include "redis.h"
#include "redis_keys.h"
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 4000
/* A failed connection attempt of the process keeps /ready failing this long, unless a
 * later attempt succeeds. */
#define READY_CONNECT_WINDOW_MS 10000

/* What every check keeps between runs. */
struct dep {
    const struct alm_config *cfg;
    void *conn; /* PGconn, redisContext or struct alm_qdrant */
    int64_t next_connect_ms;
    int backoff_ms;
    char last_error[128];
};

static struct dep *dep_new(const struct alm_config *cfg)
{
    struct dep *d = alm_xcalloc(1, sizeof(*d));
    d->cfg = cfg;
    return d;
}

typedef void *(*connect_fn)(const struct alm_config *cfg, int timeout_ms, struct alm_errbuf *eb);

/* Connects d when it has no connection, unless the backoff after the last failure still
 * runs (the last error is reported again then). True when d->conn is usable. */
static bool ensure_connected(struct dep *d, connect_fn connect, int timeout_ms, char *why, size_t n)
{
    struct alm_errbuf eb = {{0}};
    int64_t wait = d->next_connect_ms - alm_clock_ms();

    if (d->conn)
        return true;
    if (wait > 0) {
        snprintf(why, n, "%s (next attempt in %lld ms)", d->last_error, (long long)wait);
        return false;
    }
    d->conn = connect(d->cfg, timeout_ms, &eb);
    if (d->conn) {
        d->backoff_ms = 0;
        return true;
    }
    d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (d->backoff_ms > BACKOFF_MAX_MS)
        d->backoff_ms = BACKOFF_MAX_MS;
    d->next_connect_ms = alm_clock_ms() + d->backoff_ms;
    snprintf(d->last_error, sizeof(d->last_error), "%.120s", eb.msg);
    snprintf(why, n, "%s", eb.msg);
    return false;
}

static void *pg_connect(const struct alm_config *cfg, int timeout_ms, struct alm_errbuf *eb)
{
    return alm_db_connect(cfg, "almanac-ready", timeout_ms, eb);
}

static void *redis_connect(const struct alm_config *cfg, int timeout_ms, struct alm_errbuf *eb)
{
    return alm_redis_connect(cfg, timeout_ms, eb);
}

static bool run_postgres(void *state, int timeout_ms, char *why, size_t n)
{
    struct dep *d = state;
    struct alm_errbuf eb = {{0}};
    int64_t t0 = alm_clock_ms();

    if (!ensure_connected(d, pg_connect, timeout_ms, why, n))
        return false;
    /* This check's own connection may still answer while the process can open no new
     * one (max_connections reached): then requests cannot be served either. */
    if (alm_db_connect_failing(READY_CONNECT_WINDOW_MS, why, n))
        return false;
    /* The query gets what is left of the deadline after a reconnect. */
    int left = timeout_ms - (int)(alm_clock_ms() - t0);
    if (left < 1 || alm_db_ping(d->conn, left, &eb)) {
        if (left < 1)
            alm_fail(&eb, ALM_ERR_TIMEOUT, "timeout after %d ms", timeout_ms);
        PQfinish(d->conn);
        d->conn = NULL;
        snprintf(why, n, "%s", eb.msg);
        return false;
    }
    return true;
}

/* The schema check keeps its own connection, as the dependency checks do. */
struct schema_dep {
    struct dep dep;
    atomic_int *version;
};

static bool run_schema(void *state, int timeout_ms, char *why, size_t n)
{
    struct schema_dep *s = state;
    struct alm_errbuf eb = {{0}};
    int version = 0, floor = 0;

    if (!ensure_connected(&s->dep, pg_connect, timeout_ms, why, n))
        return false;
    if (alm_schema_read(s->dep.conn, timeout_ms, &version, &floor, &eb)) {
        PQfinish(s->dep.conn);
        s->dep.conn = NULL;
        snprintf(why, n, "cannot read the schema version: %s", eb.msg);
        return false;
    }
    enum alm_schema_fit fit = alm_schema_fit(version, floor, why, n);
    atomic_store(s->version, fit == ALM_SCHEMA_TOO_NEW ? ALM_SCHEMA_INCOMPATIBLE : version);
    return fit == ALM_SCHEMA_FITS;
}

static bool run_redis(void *state, int timeout_ms, char *why, size_t n)
{
    struct dep *d = state;
    struct alm_errbuf eb = {{0}};

    if (!ensure_connected(d, redis_connect, timeout_ms, why, n))
        return false;
    if (alm_redis_ping(d->conn, timeout_ms, &eb)) {
        redisFree(d->conn);
        d->conn = NULL;
        snprintf(why, n, "%s", eb.msg);
        return false;
    }
    return true;
}

/* Redis may answer PING and refuse every write (maxmemory with noeviction, a read-only
 * replica): jobs cannot be queued or moved and sign-in limits are not counted. Not
 * required, so /ready warns rather than fails: reads and searches still work. */
static bool run_redis_writes(void *state, int timeout_ms, char *why, size_t n)
{
    struct dep *d = state;
    redisReply *r;
    bool ok;

    if (!ensure_connected(d, redis_connect, timeout_ms, why, n))
        return false;
    r = redisCommand(d->conn, "SET " ALM_READY_WRITE_PROBE " 1 PX 60000");
    if (!r) {
        struct alm_errbuf eb = {{0}};
        alm_redis_error(d->conn, timeout_ms, &eb);
        redisFree(d->conn);
        d->conn = NULL;
        snprintf(why, n, "%s", eb.msg);
        return false;
    }
    ok = r->type == REDIS_REPLY_STATUS;
    if (!ok)
        snprintf(why, n, "redis refuses writes: %.100s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    return ok;
}

static bool run_qdrant(void *state, int timeout_ms, char *why, size_t n)
{
    struct dep *d = state;
    struct alm_errbuf eb = {{0}};

    if (!d->conn)
        d->conn = alm_qdrant_new(d->cfg);
    /* libcurl keeps the connection alive and reconnects by itself. */
    if (alm_qdrant_readyz(d->conn, timeout_ms, &eb)) {
        snprintf(why, n, "%s", eb.msg);
        return false;
    }
    return true;
}

static void free_postgres(void *state)
{
    struct dep *d = state;
    PQfinish(d->conn);
    free(d);
}

static void free_redis(void *state)
{
    struct dep *d = state;
    if (d->conn)
        redisFree(d->conn);
    free(d);
}

static void free_qdrant(void *state)
{
    struct dep *d = state;
    alm_qdrant_free(d->conn);
    free(d);
}

void alm_checks_add_schema(struct alm_health *h, const struct alm_config *cfg, atomic_int *version)
{
    struct schema_dep *s = alm_xcalloc(1, sizeof(*s));
    struct alm_check c = {.name = "schema",
                          .component_type = "component",
                          .required = true,
                          .run = run_schema,
                          .state = s,
                          .free_state = free_postgres};

    s->dep.cfg = cfg;
    s->version = version;
    alm_health_add(h, &c);
}

void alm_checks_add_dependencies(struct alm_health *h, const struct alm_config *cfg)
{
    struct alm_check pg = {.name = "postgres",
                           .component_type = "datastore",
                           .required = alm_config_requires(cfg, "postgres"),
                           .run = run_postgres,
                           .state = dep_new(cfg),
                           .free_state = free_postgres};
    struct alm_check rd = {.name = "redis",
                           .component_type = "datastore",
                           .required = alm_config_requires(cfg, "redis"),
                           .run = run_redis,
                           .state = dep_new(cfg),
                           .free_state = free_redis};
    struct alm_check qd = {.name = "qdrant",
                           .component_type = "datastore",
                           .required = alm_config_requires(cfg, "qdrant"),
                           .run = run_qdrant,
                           .state = dep_new(cfg),
                           .free_state = free_qdrant};

    if (!cfg->qdrant_url) {
        qd.required = false;
        qd.disabled_note = "not configured (ALMANAC_QDRANT_URL unset): keyword search only, "
                           "development mode";
    }
    struct alm_check wr = {.name = "redis_writes",
                           .component_type = "datastore",
                           .required = false,
                           .run = run_redis_writes,
                           .state = dep_new(cfg),
                           .free_state = free_redis};

    alm_health_add(h, &pg);
    alm_health_add(h, &rd);
    alm_health_add(h, &wr);
    alm_health_add(h, &qd);
}

/* The vector collection: missing or of another dimension, no document can be ingested
 * and no semantic search answered. The worker creates a missing one (a fresh install
 * becomes ready by itself); the api only reads it, and a missing collection merely
 * warns there (keyword search works, the worker will create it). Another dimension fails
 * both: nothing but an operator (ALMANAC_EMBEDDINGS_DIM, `almanac reindex`) fixes it. A
 * Qdrant that does not answer is the qdrant check's to report: here it only warns. */
struct collection_dep {
    struct dep dep;
    bool create;
    bool soft;
};

static bool run_collection(void *state, int timeout_ms, char *why, size_t n)
{
    struct collection_dep *c = state;
    const struct alm_config *cfg = c->dep.cfg;
    struct alm_errbuf eb = {{0}};
    int dim = (int)cfg->embeddings_dim;
    enum alm_err err;

    if (!c->dep.conn)
        c->dep.conn = alm_qdrant_new(cfg);
    err = alm_qdrant_check_collection(c->dep.conn, cfg->qdrant_collection, dim, timeout_ms, &eb);
    if (err == ALM_ERR_NOT_FOUND && c->create) {
        err =
            alm_qdrant_ensure_collection(c->dep.conn, cfg->qdrant_collection, dim, timeout_ms, &eb);
        if (!err)
            alm_info("ready.collection_created", "the vector collection was missing; created it",
                     "{s:s, s:i}", "collection", cfg->qdrant_collection, "dim", dim);
    }
    c->soft = err != ALM_ERR_CONFLICT;
    if (err == ALM_ERR_NOT_FOUND)
        snprintf(why, n, "%.100s (the worker creates it)", eb.msg);
    else if (err)
        snprintf(why, n, "%s", eb.msg);
    return err == ALM_OK;
}

static bool collection_soft(void *state)
{
    return ((struct collection_dep *)state)->soft;
}

static void free_collection(void *state)
{
    struct collection_dep *c = state;
    alm_qdrant_free(c->dep.conn);
    free(c);
}

void alm_checks_add_collection(struct alm_health *h, const struct alm_config *cfg, bool create)
{
    struct collection_dep *c;

    if (!cfg->qdrant_url)
        return; /* keyword search only: the qdrant check says so */
    c = alm_xcalloc(1, sizeof(*c));
    c->dep.cfg = cfg;
    c->create = create;
    struct alm_check chk = {.name = "qdrant_collection",
                            .component_type = "datastore",
                            .required = alm_config_requires(cfg, "qdrant"),
                            .run = run_collection,
                            .state = c,
                            .free_state = free_collection,
                            .soft = collection_soft};
    alm_health_add(h, &chk);
}
