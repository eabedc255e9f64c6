/* SPDX-License-Identifier: Apache-2.0 */
/* POST /auth/login, POST /auth/signup, GET /users/me and the admin user routes. */
#include "compat.h"
#include "handlers.h"
#include "auth.h"
#include "db.h"
#include "log.h"
#include "mem.h"
#include "ratelimit.h"
#include "redis_keys.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Verified against when the account does not exist, so that a failed sign-in takes as
 * long whether or not the email is known: the Argon2id hash (interactive limits, as
 * ours) of random bytes nobody kept. */
static const char dummy_hash[] = "$argon2id$v=19$m=65536,t=2,p=1$PKMsDWhO8jKP4AzjyeRA8A$"
                                 "7ouOgOEjfA37/oxdHjpj5vNTQM0ExEZrOrVO3Glxd9E";

static json_t *user_json(const struct alm_user *u)
{
    return json_pack("{s:I, s:s, s:s, s:b}", "id", (json_int_t)u->id, "email", u->email, "role",
                     u->role, "disabled", u->disabled);
}

static json_t *user_row_json(const PGresult *res, int row)
{
    struct alm_user u;

    alm_users_from_row(res, row, &u);
    return user_json(&u);
}

/* Rate-limit keys hash the email, so Redis holds no addresses. */
static void limit_keys(const char *email, const char *ip, char *acct, char *addr, size_t n)
{
    unsigned char h[16];
    char hex[33], lower[256];
    size_t i;

    for (i = 0; i < sizeof(lower) - 1 && email[i]; i++)
        lower[i] = (char)((email[i] >= 'A' && email[i] <= 'Z') ? email[i] + 32 : email[i]);
    lower[i] = '\0';
    crypto_generichash(h, sizeof(h), (const unsigned char *)lower, i, NULL, 0);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    snprintf(acct, n, ALM_LOGIN_LIMIT_ACCOUNT "%s", hex);
    snprintf(addr, n, ALM_LOGIN_LIMIT_ADDRESS "%s", ip);
}

/* Counts the attempt, then 429 when either counter is past its limit; Redis trouble
 * fails open (logged). Counted before the password is verified, so parallel guesses
 * cannot all pass the check before any is counted. */
static bool throttled_or_reply(struct alm_req *req, redisContext *rc, const char *acct,
                               const char *addr)
{
    const struct alm_app *app = alm_req_app(req);
    struct alm_errbuf eb = {{0}};
    long n[2], t[2];
    char retry[24];

    if (!rc || alm_ratelimit_take(rc, acct, addr, app->cfg->login_window_s, n, t, &eb)) {
        alm_warn("auth.ratelimit_unavailable", "sign-in limits not enforced: redis unavailable",
                 "{s:s}", "detail", rc ? eb.msg : "no connection");
        return false;
    }
    if (n[0] <= app->cfg->login_max_attempts && n[1] <= app->cfg->login_max_attempts_ip)
        return false;
    snprintf(retry, sizeof(retry), "%ld", n[0] > app->cfg->login_max_attempts ? t[0] : t[1]);
    alm_reply_header(req, "Retry-After", retry);
    alm_reply_error(req, ALM_ERR_RATE_LIMITED, "too many failed sign-ins; try again in %s seconds",
                    retry);
    alm_warn("auth.throttled", "sign-in throttled", "{s:s}", "request_id", alm_req_id(req));
    return true;
}

static void reply_token(struct alm_req *req, const struct alm_user *u, int status)
{
    const struct alm_app *app = alm_req_app(req);
    struct alm_token_claims c = {.iat = (int64_t)time(NULL)};
    char *token;

    c.exp = c.iat + app->cfg->jwt_expiry_s;
    snprintf(c.sub, sizeof(c.sub), "%lld", (long long)u->id);
    snprintf(c.role, sizeof(c.role), "%s", u->role);
    token = alm_auth_token_sign(&c, app->cfg->jwt_secret, strlen(app->cfg->jwt_secret));
    alm_reply_json(req, status,
                   json_pack("{s:s, s:s, s:I, s:o}", "access_token", token, "token_type", "bearer",
                             "expires_in", (json_int_t)app->cfg->jwt_expiry_s, "user",
                             user_json(u)));
    free(token);
}

/* Checks the credentials; replies itself on every failure. */
static bool check_login(struct alm_req *req, PGconn *conn, const char *email, const char *pw,
                        struct alm_user *u)
{
    const struct alm_app *app = alm_req_app(req);
    struct alm_errbuf eb = {{0}};
    char *hash = NULL;
    enum alm_err err;
    bool ok;

    err = alm_users_find_by_email(conn, (int)app->cfg->db_timeout_ms, email, u, &hash, &eb);
    if (err && err != ALM_ERR_NOT_FOUND) {
        alm_api_reply_err(req, err, &eb);
        return false;
    }
    ok = alm_auth_verify_password(hash ? hash : dummy_hash, pw) && !err && !u->disabled;
    free(hash);
    if (!ok)
        alm_reply_error(req, ALM_ERR_UNAUTHORIZED, "wrong email or password");
    return ok;
}

void alm_api_login(struct alm_req *req)
{
    struct alm_app *app = alm_req_app(req);
    json_t *body = alm_api_json_or_reply(req);
    const char *email, *pw;
    char ip[64], acct[128], addr[128];
    redisContext *rc = NULL;
    PGconn *conn = NULL;
    struct alm_user u;
    struct alm_errbuf eb = {{0}};

    if (!body)
        return;
    email = alm_api_json_str(body, "email");
    pw = alm_api_json_str(body, "password");
    if (!email || !pw || !*email || !*pw || strlen(email) > 254 || strlen(pw) > 1024) {
        alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "email and password are required strings");
        goto out;
    }
    alm_api_client_ip(req, ip, sizeof(ip));
    limit_keys(email, ip, acct, addr, sizeof(acct));
    rc = alm_pool_get(app->redis, &eb);
    /* Counted once: a request resumed after waiting for a database connection (below)
     * was not throttled the first time. */
    if (!alm_req_resumed(req) && throttled_or_reply(req, rc, acct, addr))
        goto out;
    conn = alm_api_db_or_reply(req);
    if (!conn)
        goto out;
    if (!check_login(req, conn, email, pw, &u)) {
        alm_info("auth.login_failed", "sign-in failed", "{s:s, s:s}", "request_id", alm_req_id(req),
                 "client", ip);
        goto out;
    }
    if (rc)
        alm_ratelimit_succeeded(rc, acct, addr);
    alm_info("auth.login", "signed in", "{s:I}", "user_id", (json_int_t)u.id);
    reply_token(req, &u, 200);
out:
    alm_pool_put(app->redis, rc);
    alm_api_db_put(req, conn);
    json_decref(body);
}

/* Creates a user from {"email","password"[,"role"]}; replies itself. */
static void create_user(struct alm_req *req, PGconn *conn, const json_t *body, const char *role,
                        bool with_token)
{
    const struct alm_app *app = alm_req_app(req);
    struct alm_errbuf eb = {{0}};
    struct alm_user u;
    enum alm_err err;

    err = alm_users_create(conn, (int)app->cfg->db_timeout_ms, alm_api_json_str(body, "email"),
                           alm_api_json_str(body, "password"), role, &u, &eb);
    if (err) {
        alm_api_reply_err(req, err, &eb);
        return;
    }
    alm_info("users.created", "user created", "{s:I, s:s}", "user_id", (json_int_t)u.id, "role",
             u.role);
    if (with_token)
        reply_token(req, &u, 201);
    else
        alm_reply_json(req, 201, user_json(&u));
}

void alm_api_signup(struct alm_req *req)
{
    const struct alm_app *app = alm_req_app(req);
    json_t *body;
    PGconn *conn;

    if (!app->cfg->allow_signup) {
        alm_reply_error(req, ALM_ERR_FORBIDDEN, "sign-up is disabled; ask an administrator");
        return;
    }
    body = alm_api_json_or_reply(req);
    if (!body)
        return;
    conn = alm_api_db_or_reply(req);
    if (conn)
        create_user(req, conn, body, "user", true);
    alm_api_db_put(req, conn);
    json_decref(body);
}

void alm_api_me(struct alm_req *req)
{
    PGconn *conn = alm_api_db_or_reply(req);
    struct alm_user u;

    if (conn && alm_api_user_or_reply(req, conn, &u))
        alm_reply_json(req, 200, user_json(&u));
    alm_api_db_put(req, conn);
}

void alm_api_users_list(struct alm_req *req)
{
    PGconn *conn = alm_api_db_or_reply(req);
    struct alm_user me;
    struct alm_page page;
    const char *params[2] = {page.cursor, page.fetch};

    if (conn && alm_api_user_or_reply(req, conn, &me) && alm_api_admin_or_reply(req, &me) &&
        alm_api_page_or_reply(req, &page))
        alm_api_reply_page(req, conn, &page,
                           "SELECT id, email, role, disabled FROM users "
                           "WHERE $1 = 0 OR id < $1 ORDER BY id DESC LIMIT $2",
                           2, params, "users", user_row_json);
    alm_api_db_put(req, conn);
}

void alm_api_users_create(struct alm_req *req)
{
    PGconn *conn = alm_api_db_or_reply(req);
    json_t *body = NULL;
    struct alm_user me;
    const char *role;

    if (!conn || !alm_api_user_or_reply(req, conn, &me) || !alm_api_admin_or_reply(req, &me))
        goto out;
    body = alm_api_json_or_reply(req);
    if (!body)
        goto out;
    role = alm_api_json_str(body, "role");
    if (!role)
        role = "user";
    if (strcmp(role, "user") != 0 && strcmp(role, "admin") != 0) {
        alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "role must be \"user\" or \"admin\"");
        goto out;
    }
    create_user(req, conn, body, role, false);
out:
    json_decref(body);
    alm_api_db_put(req, conn);
}

void alm_api_users_update(struct alm_req *req)
{
    PGconn *conn = alm_api_db_or_reply(req);
    json_t *body = NULL, *disabled;
    struct alm_user me, u;
    PGresult *res = NULL;
    int64_t id;
    char ids[ALM_API_ID_TEXT];

    if (!conn || !alm_api_user_or_reply(req, conn, &me) || !alm_api_admin_or_reply(req, &me) ||
        !alm_api_id_or_reply(req, 0, &id))
        goto out;
    body = alm_api_json_or_reply(req);
    if (!body)
        goto out;
    disabled = json_object_get(body, "disabled");
    if (!json_is_boolean(disabled)) {
        alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "\"disabled\" must be true or false");
        goto out;
    }
    if (id == me.id && json_is_true(disabled)) {
        alm_reply_error(req, ALM_ERR_CONFLICT, "you cannot disable your own account");
        goto out;
    }
    const char *params[2] = {alm_api_id_text(id, ids), alm_db_bool(json_is_true(disabled))};
    res = alm_api_row_or_reply(req, conn,
                               "UPDATE users SET disabled = $2, updated_at = now() "
                               "WHERE id = $1 RETURNING id, email, role, disabled",
                               2, params, "user", id);
    if (!res)
        goto out;
    alm_users_from_row(res, 0, &u);
    alm_info("users.updated", "user updated", "{s:I, s:b}", "user_id", (json_int_t)u.id, "disabled",
             u.disabled);
    alm_reply_json(req, 200, user_json(&u));
out:
    PQclear(res);
    json_decref(body);
    alm_api_db_put(req, conn);
}
