#include "compat.h"
#include "schema.h"
#include "db.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>

/* Any constant shared by every migrator: pg_advisory_lock(bigint). "alm_schm". */
#define MIGRATION_LOCK_KEY "7019811101098109"
/* Migrations may rewrite big tables: no statement deadline of the request kind. */
#define MIGRATION_TIMEOUT_MS (6 * 3600 * 1000)
#define READ_TIMEOUT_MS      10000

int alm_schema_expected(void)
{
    return alm_migration_count ? alm_migrations[alm_migration_count - 1].version : 0;
}

enum alm_err alm_schema_version(PGconn *conn, int timeout_ms, int *version, struct alm_errbuf *eb)
{
    PGresult *res = NULL;
    enum alm_err err;

    /* Asked first so that an empty database is version 0, not an error. */
    err = alm_db_query(conn, timeout_ms, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0,
                       NULL, &res, eb);
    if (err)
        return err;
    *version = 0;
    if (PQgetvalue(res, 0, 0)[0] == 't') {
        PQclear(res);
        err = alm_db_query(conn, timeout_ms,
                           "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL, &res,
                           eb);
        if (err)
            return err;
        *version = atoi(PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return ALM_OK;
}

enum alm_err alm_schema_require_current(PGconn *conn, int timeout_ms, struct alm_errbuf *eb)
{
    int version = 0;
    enum alm_err err = alm_schema_version(conn, timeout_ms, &version, eb);

    if (err)
        return err;
    if (version < alm_schema_expected())
        return alm_fail(eb, ALM_ERR_UNAVAILABLE,
                        "schema at version %d, this binary needs %d: run 'almanac migrate'",
                        version, alm_schema_expected());
    return ALM_OK;
}

static enum alm_err apply(PGconn *conn, const struct alm_migration *m, struct alm_errbuf *eb)
{
    char version[16];
    const char *params[2] = {version, m->name};
    enum alm_err err;

    snprintf(version, sizeof(version), "%d", m->version);
    err = alm_db_begin(conn, READ_TIMEOUT_MS, eb);
    if (err)
        return err;
    /* Simple-query protocol: a migration file holds several statements. */
    PGresult *res = PQexec(conn, m->sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        alm_fail(eb, ALM_ERR_INTERNAL, "migration %s failed: %.160s", m->name,
                 PQresultErrorMessage(res));
        PQclear(res);
        alm_db_rollback(conn, READ_TIMEOUT_MS);
        return ALM_ERR_INTERNAL;
    }
    PQclear(res);
    err = alm_db_query(conn, READ_TIMEOUT_MS,
                       "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, params,
                       NULL, eb);
    if (!err)
        err = alm_db_commit(conn, MIGRATION_TIMEOUT_MS, eb);
    if (err)
        alm_db_rollback(conn, READ_TIMEOUT_MS);
    return err;
}

enum alm_err alm_schema_migrate(PGconn *conn, int target, int *from, int *to, struct alm_errbuf *eb)
{
    enum alm_err err;

    if (target <= 0 || target > alm_schema_expected())
        target = alm_schema_expected();
    /* Waits for another migrator to finish; released by unlock or by disconnecting. */
    err = alm_db_query(conn, MIGRATION_TIMEOUT_MS,
                       "SELECT pg_advisory_lock(" MIGRATION_LOCK_KEY ")", 0, NULL, NULL, eb);
    if (err)
        return err;
    err = alm_db_query(conn, READ_TIMEOUT_MS,
                       "CREATE TABLE IF NOT EXISTS schema_migrations ("
                       " version integer PRIMARY KEY, name text NOT NULL,"
                       " applied_at timestamptz NOT NULL DEFAULT now())",
                       0, NULL, NULL, eb);
    if (!err)
        err = alm_schema_version(conn, READ_TIMEOUT_MS, from, eb);
    *to = *from;
    for (size_t i = 0; !err && i < alm_migration_count; i++) {
        const struct alm_migration *m = &alm_migrations[i];
        if (m->version <= *from || m->version > target)
            continue;
        err = apply(conn, m, eb);
        if (!err) {
            *to = m->version;
            alm_info("migrate.applied", "migration applied", "{s:i, s:s}", "version", m->version,
                     "name", m->name);
        }
    }
    if (alm_db_query(conn, READ_TIMEOUT_MS, "SELECT pg_advisory_unlock(" MIGRATION_LOCK_KEY ")", 0,
                     NULL, NULL, NULL)) {
        /* the lock ends with the session anyway */
    }
    return err;
}
