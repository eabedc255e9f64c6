/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "redis.h"
#include "clock.h"
#include "mem.h"
#include "redis_tls.h"
#include "url.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

enum alm_err alm_redis_error(const redisContext *c, int timeout_ms, struct alm_errbuf *eb)
{
    if (!c)
        return alm_fail(eb, ALM_ERR_UNAVAILABLE, "out of memory");
    if (c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == ETIMEDOUT || errno == EINPROGRESS))
        return alm_fail(eb, ALM_ERR_TIMEOUT, "timeout after %d ms", timeout_ms);
    if (strstr(c->errstr, "timed out"))
        return alm_fail(eb, ALM_ERR_TIMEOUT, "timeout after %d ms", timeout_ms);
    if (strstr(c->errstr, "refused"))
        return alm_fail(eb, ALM_ERR_UNAVAILABLE, "connection refused");
    if (c->err == REDIS_ERR_EOF)
        return alm_fail(eb, ALM_ERR_UNAVAILABLE, "connection closed by server");
    return alm_fail(eb, ALM_ERR_UNAVAILABLE, "%s", c->errstr);
}

/* Runs a command whose reply must not be an error; false with eb filled otherwise. */
static bool command_ok(redisContext *c, int timeout_ms, struct alm_errbuf *eb, int argc,
                       const char **argv)
{
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    bool ok;

    if (!r) {
        alm_redis_error(c, timeout_ms, eb);
        return false;
    }
    ok = r->type != REDIS_REPLY_ERROR;
    if (!ok)
        alm_fail(eb, ALM_ERR_UNAVAILABLE, "%s failed: %.80s", argv[0], r->str);
    freeReplyObject(r);
    return ok;
}

/* The value of ?cacert=PATH in the URL's path part (a new string), or NULL. */
static char *query_cacert(const char *path)
{
    const char *q = strchr(path, '?'), *p;

    for (p = q; p && *p; p = strchr(p, '&')) {
        p++;
        if (strncmp(p, "cacert=", 7) == 0)
            return alm_xstrndup(p + 7, strcspn(p + 7, "&"));
    }
    return NULL;
}

/* rediss://: TLS through redis_tls.c, then hiredis on the local end of the session. */
static redisContext *connect_tls(const struct alm_url *u, int timeout_ms, struct alm_errbuf *eb)
{
    char *ca = query_cacert(u->path);
    int fd = alm_redis_tls_open(u->host, u->port ? u->port : 6379, ca, timeout_ms, eb);
    redisContext *c;

    free(ca);
    if (fd < 0)
        return NULL;
    c = redisConnectFd(fd);
    if (!c || c->err) {
        alm_redis_error(c, timeout_ms, eb);
        if (c)
            redisFree(c); /* closes fd */
        else
            close(fd);
        return NULL;
    }
    return c;
}

redisContext *alm_redis_connect(const struct alm_config *cfg, int timeout_ms, struct alm_errbuf *eb)
{
    struct alm_url u;
    struct timeval tv = alm_clock_timeval(timeout_ms);
    redisContext *c = NULL;
    const char *password;
    long db = 0;

    if (!alm_url_parse(cfg->redis_url, &u)) {
        alm_fail(eb, ALM_ERR_INVALID, "ALMANAC_REDIS_URL is not a redis:// or rediss:// URL");
        return NULL;
    }
    if (u.path[0] == '/' && u.path[1])
        db = strtol(u.path + 1, NULL, 10);
    password = cfg->redis_password ? cfg->redis_password : u.password;
    if (strcmp(u.scheme, "rediss") == 0) {
        c = connect_tls(&u, timeout_ms, eb);
        if (!c)
            goto fail;
    } else {
        c = redisConnectWithTimeout(u.host, u.port ? u.port : 6379, tv);
    }
    if (!c || c->err || redisSetTimeout(c, tv) != REDIS_OK) {
        alm_redis_error(c, timeout_ms, eb);
        goto fail;
    }
    if (password && *password) {
        const char *argv[3] = {"AUTH", u.user && *u.user ? u.user : password, password};
        if (!command_ok(c, timeout_ms, eb, u.user && *u.user ? 3 : 2, argv))
            goto fail;
    }
    if (db) {
        char dbs[16];
        snprintf(dbs, sizeof(dbs), "%ld", db);
        const char *argv[2] = {"SELECT", dbs};
        if (!command_ok(c, timeout_ms, eb, 2, argv))
            goto fail;
    }
    alm_url_release(&u);
    return c;
fail:
    if (c)
        redisFree(c);
    alm_url_release(&u);
    return NULL;
}

enum alm_err alm_redis_ping(redisContext *c, int timeout_ms, struct alm_errbuf *eb)
{
    redisReply *r = redisCommand(c, "PING");
    enum alm_err err = ALM_OK;

    if (!r)
        return alm_redis_error(c, timeout_ms, eb);
    if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0)
        err = alm_fail(eb, ALM_ERR_UNAVAILABLE, "unexpected reply to PING");
    freeReplyObject(r);
    return err;
}

static void *pool_connect(void *ctx, int timeout_ms, struct alm_errbuf *eb)
{
    const struct alm_config *cfg = ctx;
    return alm_redis_connect(cfg, timeout_ms, eb);
}

static void pool_close(void *conn)
{
    redisFree(conn);
}

/* hiredis contexts are dead after any I/O or protocol error. */
static bool pool_usable(void *conn)
{
    return ((redisContext *)conn)->err == 0;
}

const struct alm_pool_ops alm_redis_pool_ops = {pool_connect, pool_close, pool_usable};
