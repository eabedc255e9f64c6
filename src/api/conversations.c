/* SPDX-License-Identifier: Apache-2.0 */
/* Conversations of the answers API: list, read (turns with their citations), rename,
 * delete. Each user sees only their own, administrators included. */
#include "compat.h"
#include "handlers.h"
#include "db.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONV_COLUMNS "c.id, c.title, c.created_at, c.updated_at"

static json_t *conversation_json(const PGresult *res, int row)
{
    return json_pack("{s:I, s:s, s:o, s:o}", "id",
                     (json_int_t)strtoll(PQgetvalue(res, row, 0), NULL, 10), "title",
                     PQgetvalue(res, row, 1), "created_at", alm_api_time(PQgetvalue(res, row, 2)),
                     "updated_at", alm_api_time(PQgetvalue(res, row, 3)));
}

void alm_api_conversations_list(struct alm_req *req)
{
    PGconn *conn = alm_api_db_or_reply(req);
    struct alm_user me;
    struct alm_page page;
    char uid[ALM_API_ID_TEXT];

    if (conn && alm_api_user_or_reply(req, conn, &me) && alm_api_page_or_reply(req, &page)) {
        const char *params[3] = {alm_api_id_text(me.id, uid), page.cursor, page.fetch};
        alm_api_reply_page(req, conn, &page,
                           "SELECT " CONV_COLUMNS " FROM conversations c WHERE c.user_id = $1 "
                           "AND ($2 = 0 OR c.id < $2) ORDER BY c.id DESC LIMIT $3",
                           3, params, "conversations", conversation_json);
    }
    alm_api_db_put(req, conn);
}

/* A citation is gone when its document is, or when the user may no longer read it; its
 * passage text then goes too. The text is the document's own, cut at the offsets. */
#define TURNS_SQL                                                                                  \
    "SELECT t.id, t.question, t.answer, t.answer_unavailable, t.nothing_relevant, "                \
    "t.dropped_citations, t.created_at, (SELECT coalesce(jsonb_agg(e.c || jsonb_build_object("     \
    "'gone', d.id IS NULL, 'text', CASE WHEN d.id IS NULL THEN NULL ELSE substr(d.text, "          \
    "(e.c->>'start')::int + 1, (e.c->>'end')::int - (e.c->>'start')::int) END) ORDER BY e.ord), "  \
    "'[]'::jsonb) FROM jsonb_array_elements(t.citations) WITH ORDINALITY AS e(c, ord) "            \
    "LEFT JOIN documents d ON d.id = (e.c->>'document_id')::bigint AND EXISTS (SELECT 1 FROM "     \
    "knowledge_bases k WHERE k.id = d.knowledge_base_id AND (k.owner_id = $2 OR $3))) "            \
    "FROM conversation_turns t JOIN conversations c ON c.id = t.conversation_id "                  \
    "WHERE c.id = $1 AND c.user_id = $2 ORDER BY t.id"

static json_t *turn_json(const PGresult *res, int r)
{
    json_t *cits = json_loads(PQgetvalue(res, r, 7), 0, NULL);
    const char *reason = PQgetisnull(res, r, 3) ? NULL : PQgetvalue(res, r, 3);

    return json_pack(
        "{s:I, s:s, s:o, s:o, s:b, s:o, s:i, s:o}", "id",
        (json_int_t)strtoll(PQgetvalue(res, r, 0), NULL, 10), "question", PQgetvalue(res, r, 1),
        "answer", PQgetisnull(res, r, 2) ? json_null() : json_string(PQgetvalue(res, r, 2)),
        "answer_unavailable", reason ? json_pack("{s:s}", "reason", reason) : json_null(),
        "nothing_relevant", strcmp(PQgetvalue(res, r, 4), "t") == 0, "citations",
        cits ? cits : json_array(), "dropped_citations",
        (int)strtol(PQgetvalue(res, r, 5), NULL, 10), "created_at",
        alm_api_time(PQgetvalue(res, r, 6)));
}

/* For the handlers of /conversations/{id}: the signed-in user and the path's id, and the
 * query parameters $1 id, $2 user and $3 whether admin. */
struct conv_req {
    struct alm_user me;
    int64_t id;
    char cid[ALM_API_ID_TEXT], uid[ALM_API_ID_TEXT];
    const char *params[3];
};

static bool conv_req_or_reply(struct alm_req *req, PGconn *conn, struct conv_req *c)
{
    if (!conn || !alm_api_user_or_reply(req, conn, &c->me) || !alm_api_id_or_reply(req, 0, &c->id))
        return false;
    c->params[0] = alm_api_id_text(c->id, c->cid);
    c->params[1] = alm_api_id_text(c->me.id, c->uid);
    c->params[2] = alm_db_bool(alm_api_is_admin(&c->me));
    return true;
}

void alm_api_conversations_get(struct alm_req *req)
{
    PGconn *conn = alm_api_db_or_reply(req);
    struct conv_req c;
    PGresult *res = NULL, *turns = NULL;

    if (!conv_req_or_reply(req, conn, &c))
        goto out;
    res = alm_api_row_or_reply(req, conn,
                               "SELECT " CONV_COLUMNS
                               " FROM conversations c WHERE c.id = $1 AND c.user_id = $2",
                               2, c.params, "conversation", c.id);
    if (!res || !alm_api_query_or_reply(req, conn, TURNS_SQL, 3, c.params, &turns))
        goto out;
    json_t *body = conversation_json(res, 0), *list = json_array();
    for (int r = 0; r < PQntuples(turns); r++)
        json_array_append_new(list, turn_json(turns, r));
    json_object_set_new(body, "turns", list);
    alm_reply_json(req, 200, body);
out:
    PQclear(res);
    PQclear(turns);
    alm_api_db_put(req, conn);
}

/* A title of 1..200 bytes on one line, not blank; replies itself when invalid. */
static const char *title_or_reply(struct alm_req *req, const json_t *body)
{
    const char *title = alm_api_json_str(body, "title");

    if (!title || !*title || strlen(title) > 200 || strpbrk(title, "\r\n") ||
        strspn(title, " \t") == strlen(title)) {
        alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "\"title\" must be 1 to 200 bytes on one line");
        return NULL;
    }
    return title;
}

void alm_api_conversations_update(struct alm_req *req)
{
    PGconn *conn = alm_api_db_or_reply(req);
    json_t *body = NULL;
    struct conv_req c;
    PGresult *res = NULL;
    const char *title;

    if (!conv_req_or_reply(req, conn, &c))
        goto out;
    body = alm_api_json_or_reply(req);
    title = body ? title_or_reply(req, body) : NULL;
    if (!title)
        goto out;
    const char *params[3] = {c.cid, c.uid, title};
    res = alm_api_row_or_reply(req, conn,
                               "WITH c AS (UPDATE conversations SET title = $3, updated_at = now() "
                               "WHERE id = $1 AND user_id = $2 RETURNING *) SELECT " CONV_COLUMNS
                               " FROM c",
                               3, params, "conversation", c.id);
    if (res)
        alm_reply_json(req, 200, conversation_json(res, 0));
out:
    PQclear(res);
    json_decref(body);
    alm_api_db_put(req, conn);
}

void alm_api_conversations_delete(struct alm_req *req)
{
    PGconn *conn = alm_api_db_or_reply(req);
    struct conv_req c;
    PGresult *res = NULL;

    if (!conv_req_or_reply(req, conn, &c))
        goto out;
    res = alm_api_row_or_reply(req, conn,
                               "DELETE FROM conversations WHERE id = $1 AND user_id = $2 "
                               "RETURNING id",
                               2, c.params, "conversation", c.id);
    if (!res)
        goto out;
    alm_info("conversation.deleted", "conversation deleted", "{s:I, s:I}", "conversation_id",
             (json_int_t)c.id, "user_id", (json_int_t)c.me.id);
    alm_reply_json(req, 200, json_pack("{s:I, s:b}", "id", (json_int_t)c.id, "deleted", 1));
out:
    PQclear(res);
    alm_api_db_put(req, conn);
}
