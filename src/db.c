#include "compat.h"
#include "db.h"
#include "clock.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

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

PGconn *alm_db_connect(const struct alm_config *cfg, const char *app_name, int timeout_ms,
                       struct alm_errbuf *eb)
{
    const char *keys[8], *vals[8];
    int k = 0;
    int64_t deadline = alm_clock_ms() + timeout_ms;
    PGconn *conn;
    enum alm_err err = ALM_OK;
    char why[160];

    keys[k] = "dbname", vals[k++] = cfg->database_url; /* expanded as a URI */
    if (cfg->database_password)
        keys[k] = "password", vals[k++] = cfg->database_password;
    keys[k] = "application_name", vals[k++] = app_name;
    keys[k] = "keepalives_idle", vals[k++] = "30";
    keys[k] = "keepalives_interval", vals[k++] = "10";
    keys[k] = "keepalives_count", vals[k++] = "3";
    keys[k] = NULL, vals[k] = NULL;
    conn = PQconnectStartParams(keys, vals, 1);
    if (!conn || PQstatus(conn) == CONNECTION_BAD)
        goto fail;
    for (;;) {
        PostgresPollingStatusType st = PQconnectPoll(conn);
        if (st == PGRES_POLLING_OK)
            return conn;
        if (st == PGRES_POLLING_FAILED)
            goto fail;
        err = wait_socket(conn, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
        if (err)
            goto fail;
    }
fail:
    if (err == ALM_ERR_TIMEOUT)
        alm_fail(eb, ALM_ERR_TIMEOUT, "timeout after %d ms (connect)", timeout_ms);
    else {
        alm_db_error_text(conn, why, sizeof(why));
        alm_fail(eb, ALM_ERR_UNAVAILABLE, "%s", why);
    }
    PQfinish(conn);
    return NULL;
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
