/* SPDX-License-Identifier: Apache-2.0 */
/* db.h: PostgreSQL connections through libpq, with deadlines on every step.
 *
 * Connecting and querying use libpq's non-blocking calls and poll(), so a server that
 * accepts the TCP connection and then never answers costs at most the deadline. */
#pragma once
#include "compat.h"
#include "config.h"
#include "err.h"
#include "mem.h"
#include "pool.h"

#include <libpq-fe.h>

/* What the server adds to a client's deadline before it gives up by itself. */
#define ALM_DB_SERVER_MARGIN_MS 1000

/* statement_timeout for a client deadline of client_timeout_ms. Every connection starts
 * with statement_timeout and lock_timeout from ALMANAC_DB_TIMEOUT_MS and an
 * idle_in_transaction_session_timeout of twice that (each plus the margin). */
int alm_db_server_timeout_ms(int client_timeout_ms);
/* Whether the last connection attempt of this process failed within within_ms (and none
 * succeeded since); why says so. */
bool alm_db_connect_failing(int64_t within_ms, char *why, size_t n);
/* Idle, outside any transaction, not mid-statement: the only state in which a connection
 * may be used again. Anything else (a timed-out statement, an aborted transaction) is
 * finished and replaced by its owner. */
bool alm_db_reusable(const PGconn *conn);

/* Returns a new connection owned by the caller (PQfinish it), or NULL with eb filled.
 * app_name shows in pg_stat_activity. */
PGconn *alm_db_connect(const struct alm_config *cfg, const char *app_name, int timeout_ms,
                       struct alm_errbuf *eb);
/* For one-shot commands (no server-side statement limits: a migration may take long):
 * retries connecting (5 s an attempt, backoff up to 4 s, each
 * failure logged) until it succeeds or wait_ms passed, since PostgreSQL may still be
 * starting (Compose, a fresh pod) or a first attempt may hang on a stale address. */
PGconn *alm_db_connect_patiently(const struct alm_config *cfg, const char *app_name,
                                 int64_t wait_ms, struct alm_errbuf *eb);
/* Runs SELECT 1 within timeout_ms. On any error the connection is unusable: finish it. */
enum alm_err alm_db_ping(PGconn *conn, int timeout_ms, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* A short, secret-free description of the connection's last error (conn NULL: libpq
 * could not allocate one): its first line, from after the first "failed: " (libpq's
 * "connection to server at ... failed:" names the host), refused connections and failed
 * authentication in two words. */
void alm_db_error_text(const PGconn *conn, char *out, size_t n);
/* Whether a failed connection attempt's message (alm_db_error_text) means that waiting
 * cannot help: a certificate that does not verify (sslmode verify-ca or verify-full:
 * unknown CA, wrong host name, missing CA file) will not verify in a minute either, and
 * waiting would only hide the cause. alm_db_connect_patiently gives up on these. */
bool alm_db_error_is_final(const char *msg);
/* Our error for a failed statement's SQLSTATE (NULL: no result, the connection failed),
 * the one mapping of the project, as alm_db_query describes it. */
enum alm_err alm_db_sqlstate_error(const char *state);

/* Runs one parametrised statement within timeout_ms (text parameters; NULL = SQL NULL).
 * On success *res (may be NULL when the caller does not want it) holds the result,
 * owned by the caller (PQclear). Errors are mapped once, here: unique violation ->
 * ALM_ERR_CONFLICT, connection class 08 -> ALM_ERR_UNAVAILABLE, timeout or query
 * cancelled -> ALM_ERR_TIMEOUT, data exceptions -> ALM_ERR_INVALID, other ->
 * ALM_ERR_INTERNAL (detail logged, eb says "database error"). After a timeout the
 * statement is cancelled on the server and the connection is left unusable
 * (alm_db_reusable false: the pool or the worker closes it). */
enum alm_err alm_db_query(PGconn *conn, int timeout_ms, const char *sql, int nparams,
                          const char *const *params, PGresult **res,
                          struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Inside a transaction: raises the server's statement_timeout to timeout_ms (plus the
 * margin) until the transaction ends, for statements allowed more than
 * ALMANAC_DB_TIMEOUT_MS. */
enum alm_err alm_db_allow_ms(PGconn *conn, int timeout_ms, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* alm_db_query for a statement allowed more than ALMANAC_DB_TIMEOUT_MS: runs it in its
 * own transaction whose server-side statement_timeout matches timeout_ms (plus the
 * margin). Not inside another transaction. */
enum alm_err alm_db_query_long(PGconn *conn, int timeout_ms, const char *sql, int nparams,
                               const char *const *params, PGresult **res,
                               struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Shorthands for BEGIN, COMMIT and ROLLBACK (rollback ignores errors). */
enum alm_err alm_db_begin(PGconn *conn, int timeout_ms, struct alm_errbuf *eb) ALM_MUSTCHECK;
enum alm_err alm_db_commit(PGconn *conn, int timeout_ms, struct alm_errbuf *eb) ALM_MUSTCHECK;
void alm_db_rollback(PGconn *conn, int timeout_ms);

/* The text of a $n::boolean parameter. */
const char *alm_db_bool(bool v);

/* A PostgreSQL array literal ("{1,2,3}") for a $n::bigint[] parameter, built in a buffer
 * the caller owns and releases: add each element to an empty buffer, then close it. */
enum alm_err alm_db_array_add(struct alm_buf *b, int64_t v) ALM_MUSTCHECK;
/* Closes the literal; one without elements is "{}". */
enum alm_err alm_db_array_close(struct alm_buf *b) ALM_MUSTCHECK;

/* Pool operations for struct alm_pool (pool.h): ctx is the struct alm_config. */
extern const struct alm_pool_ops alm_db_pool_ops;
