/* SPDX-License-Identifier: Apache-2.0 */
/* users.h: user accounts: validation, creation with an Argon2id hash, lookup. */
#pragma once
#include "compat.h"
#include "err.h"

#include <libpq-fe.h>

#define ALM_PASSWORD_MIN 8
#define ALM_PASSWORD_MAX 1024

struct alm_user {
    int64_t id;
    char email[256];
    char role[16];
    bool disabled;
};

/* Checks an email's shape (one '@', no spaces, 3..254 bytes) and a password's length;
 * ALM_ERR_UNPROCESSABLE with the reason in eb. */
enum alm_err alm_users_validate(const char *email, const char *password,
                                struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Creates a user (role "admin" or "user"); ALM_ERR_CONFLICT when the email (compared
 * case-insensitively) exists. */
enum alm_err alm_users_create(PGconn *conn, int timeout_ms, const char *email, const char *password,
                              const char *role, struct alm_user *out,
                              struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Finds a user by email; *hash (may be NULL) gets a new copy of the password hash. */
enum alm_err alm_users_find_by_email(PGconn *conn, int timeout_ms, const char *email,
                                     struct alm_user *out, char **hash,
                                     struct alm_errbuf *eb) ALM_MUSTCHECK;
enum alm_err alm_users_find(PGconn *conn, int timeout_ms, int64_t id, struct alm_user *out,
                            struct alm_errbuf *eb) ALM_MUSTCHECK;
/* Fills out from row `row` of a result with columns id, email, role, disabled. */
void alm_users_from_row(const PGresult *res, int row, struct alm_user *out);
