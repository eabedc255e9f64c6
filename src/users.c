/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "users.h"
#include "auth.h"
#include "db.h"
#include "mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USER_COLUMNS "id, email, role, disabled"

enum alm_err alm_users_validate(const char *email, const char *password, struct alm_errbuf *eb)
{
    size_t n = email ? strlen(email) : 0;
    const char *at = email ? strchr(email, '@') : NULL;

    if (n < 3 || n > 254 || !at || at == email || !at[1] || strchr(at + 1, '@') ||
        strpbrk(email, " \t\r\n<>\"") != NULL)
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "email must look like name@example.org");
    n = password ? strlen(password) : 0;
    if (n < ALM_PASSWORD_MIN || n > ALM_PASSWORD_MAX)
        return alm_fail(eb, ALM_ERR_UNPROCESSABLE, "password must be %d to %d bytes long",
                        ALM_PASSWORD_MIN, ALM_PASSWORD_MAX);
    return ALM_OK;
}

void alm_users_from_row(const PGresult *res, int row, struct alm_user *out)
{
    out->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    snprintf(out->email, sizeof(out->email), "%s", PQgetvalue(res, row, 1));
    snprintf(out->role, sizeof(out->role), "%s", PQgetvalue(res, row, 2));
    out->disabled = PQgetvalue(res, row, 3)[0] == 't';
}

enum alm_err alm_users_create(PGconn *conn, int timeout_ms, const char *email, const char *password,
                              const char *role, struct alm_user *out, struct alm_errbuf *eb)
{
    PGresult *res = NULL;
    char *hash;
    enum alm_err err = alm_users_validate(email, password, eb);

    if (err)
        return err;
    hash = alm_auth_hash_password(password);
    if (!hash)
        return alm_fail(eb, ALM_ERR_NOMEM, "out of memory while hashing");
    const char *params[3] = {email, hash, role};
    err = alm_db_query(conn, timeout_ms,
                       "INSERT INTO users (email, password_hash, role) VALUES ($1, $2, $3) "
                       "RETURNING " USER_COLUMNS,
                       3, params, &res, eb);
    free(hash);
    if (err == ALM_ERR_CONFLICT)
        return alm_fail(eb, err, "a user with email '%s' exists already", email);
    if (err)
        return err;
    alm_users_from_row(res, 0, out);
    PQclear(res);
    return ALM_OK;
}

/* Runs a query expected to return zero or one user row. */
static enum alm_err find_one(PGconn *conn, int timeout_ms, const char *sql, const char *param,
                             struct alm_user *out, char **hash, struct alm_errbuf *eb)
{
    PGresult *res = NULL;
    enum alm_err err = alm_db_query(conn, timeout_ms, sql, 1, &param, &res, eb);

    if (err)
        return err;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return alm_fail(eb, ALM_ERR_NOT_FOUND, "no such user");
    }
    alm_users_from_row(res, 0, out);
    if (hash)
        *hash = alm_xstrdup(PQgetvalue(res, 0, 4));
    PQclear(res);
    return ALM_OK;
}

enum alm_err alm_users_find_by_email(PGconn *conn, int timeout_ms, const char *email,
                                     struct alm_user *out, char **hash, struct alm_errbuf *eb)
{
    return find_one(conn, timeout_ms,
                    "SELECT " USER_COLUMNS ", password_hash FROM users "
                    "WHERE lower(email) = lower($1)",
                    email, out, hash, eb);
}

enum alm_err alm_users_find(PGconn *conn, int timeout_ms, int64_t id, struct alm_user *out,
                            struct alm_errbuf *eb)
{
    char ids[24];

    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    return find_one(conn, timeout_ms, "SELECT " USER_COLUMNS " FROM users WHERE id = $1", ids, out,
                    NULL, eb);
}
