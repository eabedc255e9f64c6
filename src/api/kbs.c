/* SPDX-License-Identifier: Apache-2.0 */
/* Knowledge bases: create, list, get, rename, delete. Owners see theirs; admins all. */
#include "compat.h"
#include "handlers.h"
#include "db.h"
#include "log.h"
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KB_COLUMNS                                                                                 \
    "k.id, k.name, k.owner_id, k.created_at, k.updated_at, "                                       \
    "(SELECT count(*) FROM documents d WHERE d.knowledge_base_id = k.id)"

static json_t *kb_json(const PGresult *res, int row)
{
    return json_pack(
        "{s:I, s:s, s:I, s:o, s:o, s:I}", "id",
        (json_int_t)strtoll(PQgetvalue(res, row, 0), NULL, 10), "name", PQgetvalue(res, row, 1),
        "owner_id", (json_int_t)strtoll(PQgetvalue(res, row, 2), NULL, 10), "created_at",
        alm_api_time(PQgetvalue(res, row, 3)), "updated_at", alm_api_time(PQgetvalue(res, row, 4)),
        "document_count", (json_int_t)strtoll(PQgetvalue(res, row, 5), NULL, 10));
}

/* A trimmed name of 1..200 characters from the body; replies itself when invalid. */
static bool name_or_reply(struct alm_req *req, const json_t *body, char *out, size_t n)
{
    const char *name = alm_api_json_str(body, "name");
    size_t len;

    if (!name) {
        alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "\"name\" must be a string");
        return false;
    }
    while (*name == ' ' || *name == '\t')
        name++;
    len = strlen(name);
    while (len > 0 && (name[len - 1] == ' ' || name[len - 1] == '\t'))
        len--;
    if (len == 0 || len > 200 || len >= n || memchr(name, '\0', len) || strpbrk(name, "\r\n")) {
        alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "\"name\" must be 1 to 200 bytes on one line");
        return false;
    }
    memcpy(out, name, len);
    out[len] = '\0';
    return true;
}

void alm_api_kbs_create(struct alm_req *req)
{
    PGconn *conn = alm_api_db_or_reply(req);
    json_t *body = NULL;
    struct alm_user me;
    PGresult *res = NULL;
    char name[256], uid[ALM_API_ID_TEXT];

    if (!conn || !alm_api_user_or_reply(req, conn, &me))
        goto out;
    body = alm_api_json_or_reply(req);
    if (!body || !name_or_reply(req, body, name, sizeof(name)))
        goto out;
    const char *params[2] = {name, alm_api_id_text(me.id, uid)};
    if (!alm_api_query_or_reply(req, conn,
                                "WITH k AS (INSERT INTO knowledge_bases (name, owner_id) "
                                "VALUES ($1, $2) RETURNING *) SELECT " KB_COLUMNS " FROM k",
                                2, params, &res))
        goto out;
    alm_info("kb.created", "knowledge base created", "{s:s, s:I}", "kb_id", PQgetvalue(res, 0, 0),
             "user_id", (json_int_t)me.id);
    alm_reply_json(req, 201, kb_json(res, 0));
out:
    PQclear(res);
    json_decref(body);
    alm_api_db_put(req, conn);
}

void alm_api_kbs_list(struct alm_req *req)
{
    PGconn *conn = alm_api_db_or_reply(req);
    struct alm_user me;
    struct alm_page page;
    char uid[ALM_API_ID_TEXT];

    if (conn && alm_api_user_or_reply(req, conn, &me) && alm_api_page_or_reply(req, &page)) {
        const char *params[4] = {alm_api_id_text(me.id, uid), alm_db_bool(alm_api_is_admin(&me)),
                                 page.cursor, page.fetch};
        alm_api_reply_page(req, conn, &page,
                           "SELECT " KB_COLUMNS " FROM knowledge_bases k "
                           "WHERE (k.owner_id = $1 OR $2) AND ($3 = 0 OR k.id < $3) "
                           "ORDER BY k.id DESC LIMIT $4",
                           4, params, "knowledge_bases", kb_json);
    }
    alm_api_db_put(req, conn);
}

/* Runs a statement on one visible knowledge base returning KB_COLUMNS ($1 id, $2 user, $3
 * whether admin, $4 extra if any) and replies 200 with it; 404 when none. */
static void one_kb(struct alm_req *req, PGconn *conn, const struct alm_user *me, int64_t id,
                   const char *sql, const char *extra)
{
    char ids[ALM_API_ID_TEXT], uid[ALM_API_ID_TEXT];
    const char *params[4] = {alm_api_id_text(id, ids), alm_api_id_text(me->id, uid),
                             alm_db_bool(alm_api_is_admin(me)), extra};
    PGresult *res =
        alm_api_row_or_reply(req, conn, sql, extra ? 4 : 3, params, "knowledge base", id);

    if (res)
        alm_reply_json(req, 200, kb_json(res, 0));
    PQclear(res);
}

void alm_api_kbs_get(struct alm_req *req)
{
    PGconn *conn = alm_api_db_or_reply(req);
    struct alm_user me;
    int64_t id;

    if (conn && alm_api_user_or_reply(req, conn, &me) && alm_api_id_or_reply(req, 0, &id))
        one_kb(req, conn, &me, id,
               "SELECT " KB_COLUMNS " FROM knowledge_bases k "
               "WHERE k.id = $1 AND (k.owner_id = $2 OR $3)",
               NULL);
    alm_api_db_put(req, conn);
}

void alm_api_kbs_update(struct alm_req *req)
{
    PGconn *conn = alm_api_db_or_reply(req);
    json_t *body = NULL;
    struct alm_user me;
    int64_t id;
    char name[256];

    if (!conn || !alm_api_user_or_reply(req, conn, &me) || !alm_api_id_or_reply(req, 0, &id))
        goto out;
    body = alm_api_json_or_reply(req);
    if (body && name_or_reply(req, body, name, sizeof(name)))
        one_kb(req, conn, &me, id,
               "WITH k AS (UPDATE knowledge_bases SET name = $4, updated_at = now() "
               "WHERE id = $1 AND (owner_id = $2 OR $3) RETURNING *) SELECT " KB_COLUMNS " FROM k",
               name);
out:
    json_decref(body);
    alm_api_db_put(req, conn);
}

void alm_api_kbs_delete(struct alm_req *req)
{
    PGconn *conn = alm_api_db_or_reply(req);
    struct alm_user me;
    struct alm_errbuf eb = {{0}};
    int64_t id;
    enum alm_err err;

    if (!conn || !alm_api_user_or_reply(req, conn, &me) || !alm_api_id_or_reply(req, 0, &id))
        goto out;
    if (!alm_api_kb_visible_or_reply(req, conn, &me, id))
        goto out;
    /* The rows go now; their vectors go through a job, in the same transaction. */
    err = alm_api_change_with_job(
        req, conn, "DELETE FROM knowledge_bases WHERE id = $1", id, ALM_QUEUE_MAINTENANCE,
        "purge_vectors", json_pack("{s:I}", "knowledge_base_id", (json_int_t)id), NULL, &eb);
    if (err) {
        alm_api_reply_err(req, err, &eb);
        goto out;
    }
    alm_info("kb.deleted", "knowledge base deleted", "{s:I, s:I}", "kb_id", (json_int_t)id,
             "user_id", (json_int_t)me.id);
    alm_reply_json(req, 200, json_pack("{s:I, s:b}", "id", (json_int_t)id, "deleted", 1));
out:
    alm_api_db_put(req, conn);
}
