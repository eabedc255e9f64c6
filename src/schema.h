/* schema.h: the database schema, versioned SQL migrations compiled into the binary.
 *
 * db/migrations/NNNN_name.sql become alm_migrations[] at build time, so the binary
 * knows the schema version it needs. `almanac migrate` applies pending migrations, each
 * in its own transaction, under a PostgreSQL advisory lock: a second migrator started
 * at the same time waits, then finds nothing to do. The api and worker never migrate;
 * they refuse work while the schema is older than they need. */
#pragma once
#include "compat.h"
#include "err.h"

#include <libpq-fe.h>

struct alm_migration {
    int version;
    const char *name;
    const char *sql;
};

extern const struct alm_migration alm_migrations[];
extern const size_t alm_migration_count;

/* The schema version this binary needs: the last migration's. */
int alm_schema_expected(void);
/* Reads the applied version (0 for an empty database). */
enum alm_err alm_schema_version(PGconn *conn, int timeout_ms, int *version,
                                struct alm_errbuf *eb) ALM_MUSTCHECK;
/* ALM_OK when the applied schema is at least the version this binary needs; else
 * ALM_ERR_UNAVAILABLE with "schema at version X, this binary needs Y: run 'almanac
 * migrate'" (or why the version could not be read) in eb. Processes that write never
 * work on an older schema. */
enum alm_err alm_schema_require_current(PGconn *conn, int timeout_ms,
                                        struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Applies migrations up to target (0: all). *from and *to get the versions before and
 * after. Stops at the first failing migration, which is rolled back. */
enum alm_err alm_schema_migrate(PGconn *conn, int target, int *from, int *to,
                                struct alm_errbuf *eb) ALM_MUSTCHECK;
