/* SPDX-License-Identifier: Apache-2.0 */
/* request.c: what the api's handlers share: the signed-in user, a database connection,
 * the body, ids and pages of a request, and error replies (see handlers.h). */
#include "compat.h"
#include "handlers.h"
#include "auth.h"
#include "clock.h"
#include "db.h"
#include "log.h"
#include "schema.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void alm_api_reply_page(struct alm_req *req, PGconn *conn, const struct alm_page *page,
                        const char *sql, int nparams, const char *const *params, const char *key,
                        json_t *(*row_json)(const PGresult *res, int row))
{
    PGresult *res = NULL;

    if (alm_api_query_or_reply(req, conn, sql, nparams, params, &res)) {
        json_t *items = json_array();
        bool more = PQntuples(res) > page->limit;
        int n = more ? page->limit : PQntuples(res);

        for (int i = 0; i < n; i++)
            json_array_append_new(items, row_json(res, i));
        alm_reply_json(req, 200,
                       json_pack("{s:o, s:o}", key, items, "next_cursor",
                                 more ? json_string(PQgetvalue(res, n - 1, 0)) : json_null()));
    }
    PQclear(res);
}

void alm_api_reply_err(struct alm_req *req, enum alm_err err, const struct alm_errbuf *eb)
{
    alm_reply_error(req, err, "%s", eb->msg[0] ? eb->msg : alm_err_name(err));
}

bool alm_api_query_or_reply(struct alm_req *req, PGconn *conn, const char *sql, int nparams,
                            const char *const *params, PGresult **res)
{
    const struct alm_app *app = alm_req_app(req);
    struct alm_errbuf eb = {{0}};
    enum alm_err err =
        alm_db_query(conn, (int)app->cfg->db_timeout_ms, sql, nparams, params, res, &eb);

    if (err)
        alm_api_reply_err(req, err, &eb);
    return !err;
}

PGresult *alm_api_row_or_reply(struct alm_req *req, PGconn *conn, const char *sql, int nparams,
                               const char *const *params, const char *what, int64_t id)
{
    PGresult *res = NULL;

    if (!alm_api_query_or_reply(req, conn, sql, nparams, params, &res)) {
        PQclear(res);
        return NULL;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        alm_reply_error(req, ALM_ERR_NOT_FOUND, "%s %lld not found", what, (long long)id);
        return NULL;
    }
    return res;
}

const char *alm_api_id_text(int64_t id, char buf[ALM_API_ID_TEXT])
{
    snprintf(buf, ALM_API_ID_TEXT, "%lld", (long long)id);
    return buf;
}

enum alm_err alm_api_change_with_job(struct alm_req *req, PGconn *conn, const char *sql, int64_t id,
                                     const char *queue, const char *type, json_t *job,
                                     PGresult **res, struct alm_errbuf *eb)
{
    struct alm_app *app = alm_req_app(req);
    int t = (int)app->cfg->db_timeout_ms;
    char ids[ALM_API_ID_TEXT];
    const char *params[1] = {alm_api_id_text(id, ids)};
    enum alm_err err = alm_db_begin(conn, t, eb);

    if (!err)
        err = alm_db_query(conn, t, sql, 1, params, res, eb);
    if (!err)
        err = alm_outbox_add(conn, t, queue, type, job, eb);
    if (!err)
        err = alm_db_commit(conn, t, eb);
    json_decref(job);
    if (!err)
        alm_relayer_kick(app->relayer);
    return err;
}

/* A request's wait for a pooled connection, in its wait slot until the request is freed:
 * then a connection handed to it and never taken goes back (alm_pool_wait_end). */
struct db_wait {
    struct alm_pool_wait w;
    struct alm_pool *pool;
    bool over; /* the last ask had its answer: the next one waits anew */
};

static void db_wait_free(void *arg)
{
    struct db_wait *d = arg;

    alm_pool_wait_end(d->pool, &d->w);
    free(d);
}

static void db_wait_park(void *req)
{
    alm_req_suspend(req);
}

static void db_wait_wake(void *req)
{
    alm_req_resume(req);
}

/* The request's wait for its ask: the first one's deadline counts from the request's
 * arrival, so that time spent behind a busy server thread is not granted twice; a later
 * ask (after an upload's body) waits anew from now; an ask resumed keeps its deadline.
 * may_wait false (the request head, which cannot be suspended): ALM_POOL_BUSY rather
 * than a wait. */
static struct db_wait *db_wait_of(struct alm_req *req, bool may_wait)
{
    struct alm_app *app = alm_req_app(req);
    struct db_wait *d = alm_req_wait(req);
    int64_t timeout = (int64_t)app->cfg->db_timeout_ms;

    if (!d) {
        d = alm_xcalloc(1, sizeof(*d));
        d->pool = app->db;
        d->w.deadline_ms = alm_req_arrived_ms(req) + timeout;
        d->w.wake = db_wait_wake;
        d->w.arg = req;
        alm_req_set_wait(req, d, db_wait_free);
    } else if (d->over) {
        d->w.deadline_ms = alm_clock_ms() + timeout;
    }
    d->over = false;
    d->w.park = may_wait ? db_wait_park : NULL;
    return d;
}

/* The connection, or NULL: answered (503), or with *busy set when may_wait is false and
 * none is free, or suspended (WAITING) until the pool hands one over or the wait expires;
 * the handler then runs again from the start and asks again. */
static PGconn *db_take_or_reply(struct alm_req *req, bool may_wait, bool *busy)
{
    struct db_wait *d = db_wait_of(req, may_wait);
    struct alm_errbuf eb = {{0}};
    void *conn;
    enum alm_pool_take got = alm_pool_take(d->pool, &d->w, &conn, &eb);

    d->over = got != ALM_POOL_WAITING;
    if (got == ALM_POOL_FAILED)
        alm_reply_error(req, ALM_ERR_UNAVAILABLE, "database unavailable: %s", eb.msg);
    *busy = got == ALM_POOL_BUSY;
    return got == ALM_POOL_READY ? conn : NULL;
}

/* The schema check of every database route; false when it answered. */
static bool schema_or_reply(struct alm_req *req)
{
    struct alm_app *app = alm_req_app(req);
    int version = atomic_load(&app->schema_version);

    if (version >= 0 && version < alm_schema_expected()) {
        alm_reply_error(req, ALM_ERR_UNAVAILABLE,
                        "database schema is at version %d, this server needs %d: run 'almanac "
                        "migrate'",
                        version, alm_schema_expected());
        return false;
    }
    if (version == ALM_SCHEMA_INCOMPATIBLE) {
        alm_reply_error(req, ALM_ERR_UNAVAILABLE,
                        "database schema is newer than this server can run on: run the newer "
                        "release (see /ready)");
        return false;
    }
    return true;
}

PGconn *alm_api_db_or_reply(struct alm_req *req)
{
    bool busy = false;

    return schema_or_reply(req) ? db_take_or_reply(req, true, &busy) : NULL;
}

void alm_api_db_put(struct alm_req *req, PGconn *conn)
{
    struct alm_app *app = alm_req_app(req);

    if (!conn)
        return;
    alm_db_rollback(conn, (int)app->cfg->db_timeout_ms); /* a no-op unless an error left one */
    alm_pool_put(app->db, conn);
}

void alm_api_tick(void *app)
{
    alm_pool_expire(((struct alm_app *)app)->db, false);
}

/* The bearer token's claims, checked (signature, expiry) without the database. */
static bool token_or_reply(struct alm_req *req, struct alm_token_claims *claims)
{
    const struct alm_app *app = alm_req_app(req);
    const char *h = alm_req_header(req, "Authorization");
    struct alm_errbuf eb = {{0}};

    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        alm_reply_header(req, "WWW-Authenticate", "Bearer");
        alm_reply_error(req, ALM_ERR_UNAUTHORIZED, "sign in first: missing bearer token");
        return false;
    }
    if (alm_auth_token_verify(h + 7, app->cfg->jwt_secret, strlen(app->cfg->jwt_secret),
                              (int64_t)time(NULL), 30, claims, &eb)) {
        alm_reply_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        alm_reply_error(req, ALM_ERR_UNAUTHORIZED, "%s", eb.msg);
        return false;
    }
    return true;
}

bool alm_api_admit(struct alm_req *req)
{
    struct alm_token_claims claims;
    struct alm_user me;
    PGconn *conn;
    int64_t kb;
    bool ok, busy = false;

    if (!token_or_reply(req, &claims))
        return false;
    if (!(alm_req_route_flags(req) & ALM_ROUTE_KB))
        return true;
    /* Uploads: the account and the knowledge base too, before megabytes arrive. The
     * handler checks again: an account can be disabled while the body comes in. So when
     * no connection is free at once these checks are left to the handler: the head cannot
     * wait suspended, and its thread must not wait. */
    if (!schema_or_reply(req))
        return false;
    conn = db_take_or_reply(req, false, &busy);
    if (busy)
        return true;
    ok = conn && alm_api_user_or_reply(req, conn, &me) && alm_api_id_or_reply(req, 0, &kb) &&
         alm_api_kb_visible_or_reply(req, conn, &me, kb);
    alm_api_db_put(req, conn);
    return ok;
}

bool alm_api_user_or_reply(struct alm_req *req, PGconn *conn, struct alm_user *user)
{
    const struct alm_app *app = alm_req_app(req);
    struct alm_token_claims claims;
    struct alm_errbuf eb = {{0}};
    enum alm_err err;

    if (!token_or_reply(req, &claims))
        return false;
    err = alm_users_find(conn, (int)app->cfg->db_timeout_ms, strtoll(claims.sub, NULL, 10), user,
                         &eb);
    if (err == ALM_ERR_NOT_FOUND || (!err && user->disabled)) {
        alm_reply_error(req, ALM_ERR_UNAUTHORIZED, "account disabled or removed");
        return false;
    }
    if (err) {
        alm_api_reply_err(req, err, &eb);
        return false;
    }
    return true;
}

bool alm_api_admin_or_reply(struct alm_req *req, const struct alm_user *user)
{
    if (alm_api_is_admin(user))
        return true;
    alm_reply_error(req, ALM_ERR_FORBIDDEN, "administrators only");
    return false;
}

bool alm_api_is_admin(const struct alm_user *user)
{
    return strcmp(user->role, "admin") == 0;
}

bool alm_api_kb_visible_or_reply(struct alm_req *req, PGconn *conn, const struct alm_user *user,
                                 int64_t kb)
{
    char kbs[ALM_API_ID_TEXT], uid[ALM_API_ID_TEXT];
    const char *params[3] = {alm_api_id_text(kb, kbs), alm_api_id_text(user->id, uid),
                             alm_db_bool(alm_api_is_admin(user))};
    PGresult *res = alm_api_row_or_reply(
        req, conn, "SELECT 1 FROM knowledge_bases WHERE id = $1 AND (owner_id = $2 OR $3)", 3,
        params, "knowledge base", kb);
    bool found = res != NULL;

    PQclear(res);
    return found;
}

json_t *alm_api_json_or_reply(struct alm_req *req)
{
    const struct alm_buf *body = alm_req_body(req);
    json_error_t jerr;
    json_t *v = json_loadb(body->data, body->len, JSON_REJECT_DUPLICATES, &jerr);

    if (!v) {
        alm_reply_error(req, ALM_ERR_INVALID, "body is not valid JSON: %s at line %d column %d",
                        jerr.text, jerr.line, jerr.column);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        alm_reply_error(req, ALM_ERR_INVALID, "body must be a JSON object");
        return NULL;
    }
    return v;
}

/* A decimal id in 1..2^53 (JSON-safe); false for anything else. */
static bool parse_id(const char *s, int64_t *id)
{
    char *end;
    long long v;

    if (!s || !*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 16)
        return false;
    v = strtoll(s, &end, 10);
    if (v < 1 || v > (1LL << 53))
        return false;
    *id = v;
    return true;
}

bool alm_api_id_or_reply(struct alm_req *req, size_t i, int64_t *id)
{
    if (parse_id(alm_req_param(req, i), id))
        return true;
    alm_reply_error(req, ALM_ERR_NOT_FOUND, "not found");
    return false;
}

bool alm_api_page_or_reply(struct alm_req *req, struct alm_page *page)
{
    const char *l = alm_req_query(req, "limit");
    const char *c = alm_req_query(req, "cursor");
    int64_t v, cursor = 0;

    page->limit = 20;
    if (l) {
        if (!parse_id(l, &v) || v > 100) {
            alm_reply_error(req, ALM_ERR_INVALID, "limit must be 1..100");
            return false;
        }
        page->limit = (int)v;
    }
    if (c && *c && !parse_id(c, &cursor)) {
        alm_reply_error(req, ALM_ERR_INVALID, "cursor is not one this server gave");
        return false;
    }
    snprintf(page->cursor, sizeof(page->cursor), "%lld", (long long)cursor);
    snprintf(page->fetch, sizeof(page->fetch), "%d", page->limit + 1);
    return true;
}

const char *alm_api_json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

json_t *alm_api_time(const char *ts)
{
    /* PostgreSQL's ISO style in UTC sessions, "2026-11-28 14:55:27.356821+00", becomes
     * RFC 3339 with milliseconds: "2026-11-28T14:55:27.356Z". */
    char ms[4] = "000";
    const char *frac = strlen(ts) > 19 && ts[19] == '.' ? ts + 20 : "";
    char out[40];

    if (strlen(ts) < 19 || ts[10] != ' ')
        return json_string(ts);
    for (int i = 0; i < 3 && frac[i] >= '0' && frac[i] <= '9'; i++)
        ms[i] = frac[i];
    snprintf(out, sizeof(out), "%.10sT%.8s.%sZ", ts, ts + 11, ms);
    return json_string(out);
}

void alm_api_client_ip(struct alm_req *req, char *out, size_t n)
{
    const struct alm_app *app = alm_req_app(req);
    const char *real = alm_req_header(req, "X-Real-IP");

    unsigned char bin[16];

    /* Only an address that parses as one, printed back in canonical form: "::ffff:1.2.3.4",
     * "1.2.3.4.5" or a 40-character run of digits is not a client address. */
    if (app->cfg->trust_proxy && real) {
        if (inet_pton(AF_INET, real, bin) == 1 && inet_ntop(AF_INET, bin, out, (socklen_t)n))
            return;
        if (inet_pton(AF_INET6, real, bin) == 1 && inet_ntop(AF_INET6, bin, out, (socklen_t)n))
            return;
    }
    alm_req_peer(req, out, n);
}
