/* SPDX-License-Identifier: Apache-2.0 */
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

int alm_schema_floor(void)
{
    int floor = 0;

    for (size_t i = 0; i < alm_migration_count; i++) {
        if (alm_migrations[i].compatible_from > floor)
            floor = alm_migrations[i].compatible_from;
    }
    return floor;
}

enum alm_err alm_schema_read(PGconn *conn, int timeout_ms, int *version, int *floor,
                             struct alm_errbuf *eb)
{
    PGresult *res = NULL;
    enum alm_err err;

    /* Asked first so that an empty database is version 0, not an error. The column
     * compatible_from is newer than the table: rows without it broke older binaries. */
    err = alm_db_query(conn, timeout_ms,
                       "SELECT to_regclass('schema_migrations') IS NOT NULL, EXISTS (SELECT 1 "
                       "FROM pg_attribute WHERE attrelid = to_regclass('schema_migrations') "
                       "AND attname = 'compatible_from' AND NOT attisdropped)",
                       0, NULL, &res, eb);
    if (err)
        return err;
    *version = *floor = 0;
    if (PQgetvalue(res, 0, 0)[0] == 't') {
        bool has_floor = PQgetvalue(res, 0, 1)[0] == 't';
        PQclear(res);
        err = alm_db_query(conn, timeout_ms,
                           has_floor ? "SELECT coalesce(max(version), 0), "
                                       "coalesce(max(coalesce(compatible_from, version)), 0) "
                                       "FROM schema_migrations"
                                     : "SELECT coalesce(max(version), 0), "
                                       "coalesce(max(version), 0) FROM schema_migrations",
                           0, NULL, &res, eb);
        if (err)
            return err;
        *version = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
        *floor = (int)strtol(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);
    return ALM_OK;
}

enum alm_err alm_schema_version(PGconn *conn, int timeout_ms, int *version, struct alm_errbuf *eb)
{
    int floor;

    return alm_schema_read(conn, timeout_ms, version, &floor, eb);
}

enum alm_schema_fit alm_schema_fit(int version, int floor, char *why, size_t n)
{
    int needs = alm_schema_expected();

    if (version < needs) {
        snprintf(why, n, "schema at version %d, this binary needs %d: run 'almanac migrate'",
                 version, needs);
        return ALM_SCHEMA_OLD;
    }
    if (version > needs && floor > needs) {
        snprintf(why, n,
                 "schema at version %d runs only binaries that need version %d or newer, this "
                 "one needs %d: run the newer release (docs/upgrades.md)",
                 version, floor, needs);
        return ALM_SCHEMA_TOO_NEW;
    }
    if (n)
        why[0] = '\0';
    return ALM_SCHEMA_FITS;
}

enum alm_err alm_schema_require_current(PGconn *conn, int timeout_ms, struct alm_errbuf *eb)
{
    int version = 0, floor = 0;
    char why[200];
    enum alm_err err = alm_schema_read(conn, timeout_ms, &version, &floor, eb);

    if (err)
        return err;
    if (alm_schema_fit(version, floor, why, sizeof(why)) != ALM_SCHEMA_FITS)
        return alm_fail(eb, ALM_ERR_UNAVAILABLE, "%s", why);
    return ALM_OK;
}

static enum alm_err apply(PGconn *conn, const struct alm_migration *m, struct alm_errbuf *eb)
{
    char version[16], compat[16];
    const char *params[3] = {version, m->name, compat};
    enum alm_err err;

    snprintf(version, sizeof(version), "%d", m->version);
    snprintf(compat, sizeof(compat), "%d", m->compatible_from);
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
                       "INSERT INTO schema_migrations (version, name, compatible_from) "
                       "VALUES ($1, $2, $3)",
                       3, params, NULL, eb);
    if (!err)
        err = alm_db_commit(conn, MIGRATION_TIMEOUT_MS, eb);
    if (err)
        alm_db_rollback(conn, READ_TIMEOUT_MS);
    return err;
}

/* Versions may have gaps until branches merge: a migration numbered below the applied
 * version can still be pending, so each one is looked up rather than compared. */
static enum alm_err is_applied(PGconn *conn, int version, bool *applied, struct alm_errbuf *eb)
{
    char v[16];
    const char *params[1] = {v};
    PGresult *res = NULL;
    enum alm_err err;

    snprintf(v, sizeof(v), "%d", version);
    err = alm_db_query(conn, READ_TIMEOUT_MS, "SELECT 1 FROM schema_migrations WHERE version = $1",
                       1, params, &res, eb);
    if (!err)
        *applied = PQntuples(res) > 0;
    PQclear(res);
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
        err = alm_db_query(conn, READ_TIMEOUT_MS,
                           "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS "
                           "compatible_from integer",
                           0, NULL, NULL, eb);
    if (!err)
        err = alm_schema_version(conn, READ_TIMEOUT_MS, from, eb);
    *to = *from;
    for (size_t i = 0; !err && i < alm_migration_count; i++) {
        const struct alm_migration *m = &alm_migrations[i];
        bool applied = false;
        if (m->version > target)
            continue;
        err = is_applied(conn, m->version, &applied, eb);
        if (err || applied)
            continue;
        err = apply(conn, m, eb);
        if (!err) {
            if (m->version > *to)
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
