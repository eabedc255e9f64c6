/* SPDX-License-Identifier: Apache-2.0 */
/* schema.h: the database schema, versioned SQL migrations compiled into the binary.
 *
 * db/migrations/NNNN_name.sql become alm_migrations[] at build time, so the binary
 * knows the schema version it needs. `almanac migrate` applies pending migrations, each
 * in its own transaction, under a PostgreSQL advisory lock: a second migrator started
 * at the same time waits, then finds nothing to do. The api and worker never migrate;
 * they refuse work while the schema is older than they need, or newer and no longer
 * compatible with them.
 *
 * Compatibility (docs/upgrades.md): each migration records compatible_from, the oldest
 * schema version a binary may need and still run on the schema after it (expand-only
 * migrations keep the previous release's; a contract step raises it). Applied
 * migrations store it in schema_migrations, so an older binary, which does not know
 * those migrations, can read from the database whether it may run: the schema's floor
 * is the largest compatible_from applied, and a binary that needs version E runs on
 * schema V >= E when E >= floor. */
#pragma once
#include "compat.h"
#include "err.h"

#include <libpq-fe.h>

struct alm_migration {
    int version;
    int compatible_from;
    const char *name;
    const char *sql;
};

extern const struct alm_migration alm_migrations[];
extern const size_t alm_migration_count;

/* The schema version this binary needs: the last migration's. */
int alm_schema_expected(void);
/* The floor of this binary's own schema: binaries that need this version or newer run
 * on it (the oldest release a rollback may go back to without restoring). */
int alm_schema_floor(void);
/* Reads the applied version (0 for an empty database). */
enum alm_err alm_schema_version(PGconn *conn, int timeout_ms, int *version,
                                struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Reads the applied version and the schema's floor (both 0 for an empty database). */
enum alm_err alm_schema_read(PGconn *conn, int timeout_ms, int *version, int *floor,
                             struct alm_errbuf *eb) ALM_MUSTCHECK;

enum alm_schema_fit {
    ALM_SCHEMA_FITS,    /* this binary runs on it */
    ALM_SCHEMA_OLD,     /* older than this binary needs: run migrate */
    ALM_SCHEMA_TOO_NEW, /* newer, and a migration broke compatibility with this binary */
};
/* What the readiness check stores for the api when the schema is ALM_SCHEMA_TOO_NEW
 * (else the applied version). */
#define ALM_SCHEMA_INCOMPATIBLE (-2)
/* Whether this binary runs on a schema at version with floor; when not, why (one line,
 * saying what to do) goes to why. */
enum alm_schema_fit alm_schema_fit(int version, int floor, char *why, size_t n);
/* ALM_OK when this binary runs on the applied schema; else ALM_ERR_UNAVAILABLE with the
 * reason of alm_schema_fit (or why the version could not be read) in eb. */
enum alm_err alm_schema_require_current(PGconn *conn, int timeout_ms,
                                        struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Applies the migrations up to target (0: all) that are not applied yet. *from and *to
 * get the versions before and after. Stops at the first failing migration, which is
 * rolled back. */
enum alm_err alm_schema_migrate(PGconn *conn, int target, int *from, int *to,
                                struct alm_errbuf *eb) ALM_MUSTCHECK;
