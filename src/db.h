/* db.h: PostgreSQL connections through libpq, with deadlines on every step.
 *
 * Connecting and querying use libpq's non-blocking calls and poll(), so a server that
 * accepts the TCP connection and then never answers costs at most the deadline. */
#pragma once
#include "compat.h"
#include "config.h"
#include "err.h"

#include <libpq-fe.h>

/* Returns a new connection owned by the caller (PQfinish it), or NULL with eb filled.
 * app_name shows in pg_stat_activity. */
PGconn *alm_db_connect(const struct alm_config *cfg, const char *app_name, int timeout_ms,
                       struct alm_errbuf *eb);
/* Runs SELECT 1 within timeout_ms. On any error the connection is unusable: finish it. */
enum alm_err alm_db_ping(PGconn *conn, int timeout_ms, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* A short, secret-free description of the connection's last error. */
void alm_db_error_text(const PGconn *conn, char *out, size_t n);
