/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "db.h"
#include "clock.h"
#include "log.h"
#include "pool.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The last connection attempt of this process (any caller), for readiness: a process
 * whose new connections fail ("too many clients", authentication) is not ready even
 * when an old connection still answers. */
static _Atomic int64_t last_connect_ok_ms, last_connect_failed_ms;
static _Atomic int cancels_in_flight;
#define MAX_CANCELS_IN_FLIGHT 8

bool alm_db_connect_failing(int64_t within_ms, char *why, size_t n)
{
    int64_t failed = atomic_load(&last_connect_failed_ms), ok = atomic_load(&last_connect_ok_ms);

    if (failed == 0 || failed < ok || alm_clock_ms() - failed > within_ms)
        return false;
    snprintf(why, n, "new database connections fail (last %lld ms ago)",
             (long long)(alm_clock_ms() - failed));
    return true;
}

int alm_db_server_timeout_ms(int client_timeout_ms)
{
    return client_timeout_ms + ALM_DB_SERVER_MARGIN_MS;
}

void alm_db_error_text(const PGconn *conn, char *out, size_t n)
{
    const char *msg = conn ? PQerrorMessage(conn) : "out of memory";
    const char *p;

    if (strstr(msg, "Connection refused"))
        msg = "connection refused";
    else if (strstr(msg, "password authentication failed") || strstr(msg, "no password supplied"))
        msg = "authentication failed";
    else if ((p = strstr(msg, "failed: ")) != NULL)
        msg = p + 8;
    snprintf(out, n, "%.*s", (int)strcspn(msg, "\n"), msg);
}

/* Waits until the socket is ready for events or the deadline passes. */
static enum alm_err wait_socket(PGconn *conn, short events, int64_t deadline)
{
    struct pollfd pfd = {.fd = PQsocket(conn), .events = events};
    int64_t left = deadline - alm_clock_ms();
    int rc;

    if (pfd.fd < 0)
        return ALM_ERR_UNAVAILABLE;
    if (left <= 0)
        return ALM_ERR_TIMEOUT;
    do {
        rc = poll(&pfd, 1, (int)left);
    } while (rc < 0 && errno == EINTR);
    if (rc == 0)
        return ALM_ERR_TIMEOUT;
    return rc < 0 ? ALM_ERR_UNAVAILABLE : ALM_OK;
}

/* bounded: the services' server-side limits; one-shot commands (migrate) go without. */
static PGconn *connect_to(const struct alm_config *cfg, const char *app_name, int timeout_ms,
                          bool bounded, struct alm_errbuf *eb)
{
    const char *keys[10], *vals[10];
    char options[192];
    int k = 0;
    int64_t deadline = alm_clock_ms() + timeout_ms;
    PGconn *conn;
    enum alm_err err = ALM_OK;
    char why[160];

    keys[k] = "dbname", vals[k++] = cfg->database_url; /* expanded as a URI */
    if (cfg->database_password)
        keys[k] = "password", vals[k++] = cfg->database_password;
    keys[k] = "application_name", vals[k++] = app_name;
    /* Timestamps read back in UTC. The server gives up on a statement, a lock wait or an
     * abandoned transaction shortly after the client would have: nothing outlives its
     * caller, even when the cancel request cannot reach the server. Longer statements
     * (a job's chunk writes) raise statement_timeout for their transaction only. */
    if (bounded)
        snprintf(options, sizeof(options),
                 "-c TimeZone=UTC -c statement_timeout=%d -c lock_timeout=%d "
                 "-c idle_in_transaction_session_timeout=%d",
                 alm_db_server_timeout_ms((int)cfg->db_timeout_ms), (int)cfg->db_timeout_ms,
                 alm_db_server_timeout_ms(2 * (int)cfg->db_timeout_ms));
    else
        snprintf(options, sizeof(options), "-c TimeZone=UTC");
    keys[k] = "options", vals[k++] = options;
    keys[k] = "keepalives_idle", vals[k++] = "30";
    keys[k] = "keepalives_interval", vals[k++] = "10";
    keys[k] = "keepalives_count", vals[k++] = "3";
    keys[k] = NULL, vals[k] = NULL;
    conn = PQconnectStartParams(keys, vals, 1);
    if (!conn || PQstatus(conn) == CONNECTION_BAD)
        goto fail;
    for (;;) {
        PostgresPollingStatusType st = PQconnectPoll(conn);
        if (st == PGRES_POLLING_OK) {
            atomic_store(&last_connect_ok_ms, alm_clock_ms());
            return conn;
        }
        if (st == PGRES_POLLING_FAILED)
            goto fail;
        err = wait_socket(conn, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
        if (err)
            goto fail;
    }
fail:
    atomic_store(&last_connect_failed_ms, alm_clock_ms());
    if (err == ALM_ERR_TIMEOUT)
        alm_fail(eb, ALM_ERR_TIMEOUT, "timeout after %d ms (connect)", timeout_ms);
    else {
        alm_db_error_text(conn, why, sizeof(why));
        alm_fail(eb, ALM_ERR_UNAVAILABLE, "%s", why);
    }
    PQfinish(conn);
    return NULL;
}

PGconn *alm_db_connect(const struct alm_config *cfg, const char *app_name, int timeout_ms,
                       struct alm_errbuf *eb)
{
    return connect_to(cfg, app_name, timeout_ms, true, eb);
}

bool alm_db_error_is_final(const char *msg)
{
    return strstr(msg, "certificate") != NULL;
}

PGconn *alm_db_connect_patiently(const struct alm_config *cfg, const char *app_name,
                                 int64_t wait_ms, struct alm_errbuf *eb)
{
    int64_t deadline = alm_clock_ms() + wait_ms;
    int backoff = 250;

    for (;;) {
        PGconn *conn = connect_to(cfg, app_name, 5000, false, eb);
        if (conn || alm_clock_ms() + backoff > deadline || alm_db_error_is_final(eb->msg))
            return conn;
        alm_warn("db.waiting", "database not reachable yet, retrying", "{s:s, s:i}", "detail",
                 eb->msg, "retry_ms", backoff);
        alm_clock_sleep_ms(backoff);
        backoff = backoff < 4000 ? backoff * 2 : 4000;
    }
}

enum alm_err alm_db_ping(PGconn *conn, int timeout_ms, struct alm_errbuf *eb)
{
    int64_t deadline = alm_clock_ms() + timeout_ms;
    enum alm_err err;
    PGresult *res;
    bool ok = false;
    char why[160];

    if (PQstatus(conn) != CONNECTION_OK || !PQsendQuery(conn, "SELECT 1"))
        goto broken;
    while (PQflush(conn) == 1) {
        err = wait_socket(conn, POLLOUT, deadline);
        if (err)
            goto wait_failed;
    }
    for (;;) {
        if (!PQconsumeInput(conn))
            goto broken;
        if (!PQisBusy(conn))
            break;
        err = wait_socket(conn, POLLIN, deadline);
        if (err)
            goto wait_failed;
    }
    while ((res = PQgetResult(conn)) != NULL) {
        ok = ok || PQresultStatus(res) == PGRES_TUPLES_OK;
        PQclear(res);
    }
    if (ok)
        return ALM_OK;
broken:
    alm_db_error_text(conn, why, sizeof(why));
    return alm_fail(eb, ALM_ERR_UNAVAILABLE, "%s", *why ? why : "query failed");
wait_failed:
    if (err == ALM_ERR_TIMEOUT)
        return alm_fail(eb, ALM_ERR_TIMEOUT, "timeout after %d ms", timeout_ms);
    return alm_fail(eb, ALM_ERR_UNAVAILABLE, "connection lost");
}

enum alm_err alm_db_sqlstate_error(const char *state)
{
    if (!state)
        return ALM_ERR_UNAVAILABLE; /* no result status: the connection failed */
    if (strcmp(state, "23505") == 0)
        return ALM_ERR_CONFLICT;
    if (strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 || strcmp(state, "57P03") == 0)
        return ALM_ERR_UNAVAILABLE;
    if (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0)
        return ALM_ERR_TIMEOUT;
    if (strncmp(state, "22", 2) == 0)
        return ALM_ERR_INVALID;
    return ALM_ERR_INTERNAL;
}

/* Waits for the whole result of a sent statement; keeps the last result. */
static enum alm_err await_result(PGconn *conn, int64_t deadline, PGresult **last)
{
    enum alm_err err;
    PGresult *r;

    while (PQflush(conn) == 1) {
        err = wait_socket(conn, POLLOUT, deadline);
        if (err)
            return err;
    }
    for (;;) {
        if (!PQconsumeInput(conn))
            return ALM_ERR_UNAVAILABLE;
        if (!PQisBusy(conn)) {
            r = PQgetResult(conn);
            if (!r)
                return ALM_OK;
            PQclear(*last);
            *last = r;
            continue;
        }
        err = wait_socket(conn, POLLIN, deadline);
        if (err)
            return err;
    }
}

static void *cancel_thread(void *arg)
{
    PGcancel *cancel = arg;
    char why[128];

    if (!PQcancel(cancel, why, sizeof(why)))
        alm_warn("db.cancel_failed", "cannot cancel a timed-out statement", "{s:s}", "detail", why);
    PQfreeCancel(cancel);
    atomic_fetch_sub(&cancels_in_flight, 1);
    return NULL;
}

/* Asks the server to cancel the statement running on conn. libpq 15's PQcancel blocks
 * until the server answers (forever while it is frozen), so it runs on a detached thread,
 * a few at most: past that the server's own statement_timeout ends the statement. */
static void cancel_statement(PGconn *conn)
{
    PGcancel *cancel;
    pthread_attr_t attr;
    pthread_t t;

    if (atomic_fetch_add(&cancels_in_flight, 1) >= MAX_CANCELS_IN_FLIGHT ||
        !(cancel = PQgetCancel(conn))) {
        atomic_fetch_sub(&cancels_in_flight, 1);
        return;
    }
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, cancel_thread, cancel) != 0) {
        alm_warn("db.cancel_failed", "cannot start a thread to cancel a timed-out statement", NULL);
        PQfreeCancel(cancel);
        atomic_fetch_sub(&cancels_in_flight, 1);
    }
    pthread_attr_destroy(&attr);
}

bool alm_db_reusable(const PGconn *conn)
{
    return conn && PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) == PQTRANS_IDLE;
}

enum alm_err alm_db_query(PGconn *conn, int timeout_ms, const char *sql, int nparams,
                          const char *const *params, PGresult **res, struct alm_errbuf *eb)
{
    int64_t deadline = alm_clock_ms() + timeout_ms;
    PGresult *last = NULL;
    enum alm_err err;
    ExecStatusType st;

    if (res)
        *res = NULL;
    if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
        return alm_fail(eb, ALM_ERR_UNAVAILABLE, "database connection lost");
    err = await_result(conn, deadline, &last);
    if (err) {
        PQclear(last);
        if (err == ALM_ERR_TIMEOUT) {
            cancel_statement(conn); /* the connection stays active: its owner discards it */
            return alm_fail(eb, ALM_ERR_TIMEOUT, "database did not answer within %d ms",
                            timeout_ms);
        }
        return alm_fail(eb, ALM_ERR_UNAVAILABLE, "database connection lost");
    }
    st = last ? PQresultStatus(last) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (res)
            *res = last;
        else
            PQclear(last);
        return ALM_OK;
    }
    err = alm_db_sqlstate_error(last ? PQresultErrorField(last, PG_DIAG_SQLSTATE) : NULL);
    if (err == ALM_ERR_INTERNAL || err == ALM_ERR_UNAVAILABLE) {
        char why[160];
        alm_db_error_text(conn, why, sizeof(why));
        alm_error("db.error", "database statement failed", "{s:s, s:s}", "sqlstate",
                  last && PQresultErrorField(last, PG_DIAG_SQLSTATE)
                      ? PQresultErrorField(last, PG_DIAG_SQLSTATE)
                      : "",
                  "detail", why);
    }
    PQclear(last);
    return alm_fail(eb, err, "%s",
                    err == ALM_ERR_CONFLICT      ? "already exists"
                    : err == ALM_ERR_UNAVAILABLE ? "database unavailable"
                    : err == ALM_ERR_TIMEOUT     ? "database statement timed out"
                    : err == ALM_ERR_INVALID     ? "invalid value"
                                                 : "database error");
}

enum alm_err alm_db_begin(PGconn *conn, int timeout_ms, struct alm_errbuf *eb)
{
    return alm_db_query(conn, timeout_ms, "BEGIN", 0, NULL, NULL, eb);
}

enum alm_err alm_db_commit(PGconn *conn, int timeout_ms, struct alm_errbuf *eb)
{
    return alm_db_query(conn, timeout_ms, "COMMIT", 0, NULL, NULL, eb);
}

enum alm_err alm_db_allow_ms(PGconn *conn, int timeout_ms, struct alm_errbuf *eb)
{
    char limit[24];
    const char *p_limit[1] = {limit};

    snprintf(limit, sizeof(limit), "%d", alm_db_server_timeout_ms(timeout_ms));
    return alm_db_query(conn, timeout_ms, "SELECT set_config('statement_timeout', $1, true)", 1,
                        p_limit, NULL, eb);
}

enum alm_err alm_db_query_long(PGconn *conn, int timeout_ms, const char *sql, int nparams,
                               const char *const *params, PGresult **res, struct alm_errbuf *eb)
{
    enum alm_err err;

    if (res)
        *res = NULL;
    err = alm_db_begin(conn, timeout_ms, eb);
    if (!err)
        err = alm_db_allow_ms(conn, timeout_ms, eb);
    if (!err)
        err = alm_db_query(conn, timeout_ms, sql, nparams, params, res, eb);
    if (!err)
        err = alm_db_commit(conn, timeout_ms, eb);
    if (err) {
        if (res) {
            PQclear(*res);
            *res = NULL;
        }
        alm_db_rollback(conn, timeout_ms);
    }
    return err;
}

void alm_db_rollback(PGconn *conn, int timeout_ms)
{
    PGTransactionStatusType st = PQtransactionStatus(conn);

    if (st != PQTRANS_INTRANS && st != PQTRANS_INERROR)
        return;
    if (alm_db_query(conn, timeout_ms, "ROLLBACK", 0, NULL, NULL, NULL)) {
        /* the connection stays inside the transaction: the pool closes it */
    }
}

const char *alm_db_bool(bool v)
{
    return v ? "true" : "false";
}

/* The opening brace goes with the first element, so the buffer alone says where it is. */
enum alm_err alm_db_array_add(struct alm_buf *b, int64_t v)
{
    return alm_buf_appendf(b, "%s%lld", b->len ? "," : "{", (long long)v);
}

enum alm_err alm_db_array_close(struct alm_buf *b)
{
    return b->len ? alm_buf_append(b, "}", 1) : alm_buf_append(b, "{}", 2);
}

static void *pool_connect(void *ctx, int timeout_ms, struct alm_errbuf *eb)
{
    const struct alm_config *cfg = ctx;
    return alm_db_connect(cfg, "almanac", timeout_ms, eb);
}

static void pool_close(void *conn)
{
    PQfinish(conn);
}

/* Idle, outside any transaction and not mid-statement (a timed-out statement leaves
 * the connection active). */
static bool pool_usable(void *conn)
{
    return alm_db_reusable(conn);
}

const struct alm_pool_ops alm_db_pool_ops = {pool_connect, pool_close, pool_usable};
