/* SPDX-License-Identifier: Apache-2.0 */
/* Documents: upload, list, get, delete, re-process, content. */
#include "compat.h"
#include "handlers.h"
#include "db.h"
#include "extract_doc.h"
#include "filetype.h"
#include "log.h"
#include "multipart.h"
#include "outbox.h"
#include "text.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DOC_COLUMNS                                                                                \
    "d.id, d.knowledge_base_id, d.title, d.filename, d.media_type, d.size_bytes, d.sha256, "       \
    "d.status, d.error, d.chunk_count, d.created_at, d.updated_at, d.processed_at"
/* Joins a document to its knowledge base and keeps it only when visible: $1 document,
 * $2 user id, $3 whether admin. */
#define DOC_VISIBLE                                                                                \
    " FROM documents d JOIN knowledge_bases k ON k.id = d.knowledge_base_id "                      \
    "WHERE d.id = $1 AND (k.owner_id = $2 OR $3)"

/* What an upload carries once taken apart. */
struct upload {
    const char *data;
    size_t len;
    char filename[256];
    char title[256];
    char media_type[96];
    char charset[64];
    bool title_from_filename;
};

static json_t *nullable(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

static json_t *doc_json(const PGresult *res, int row)
{
    return json_pack(
        "{s:I, s:I, s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:i, s:o, s:o, s:o}", "id",
        (json_int_t)strtoll(PQgetvalue(res, row, 0), NULL, 10), "knowledge_base_id",
        (json_int_t)strtoll(PQgetvalue(res, row, 1), NULL, 10), "title", PQgetvalue(res, row, 2),
        "filename", PQgetvalue(res, row, 3), "media_type", PQgetvalue(res, row, 4), "size_bytes",
        (json_int_t)strtoll(PQgetvalue(res, row, 5), NULL, 10), "sha256", PQgetvalue(res, row, 6),
        "status", PQgetvalue(res, row, 7), "error", nullable(res, row, 8), "chunk_count",
        (int)strtol(PQgetvalue(res, row, 9), NULL, 10), "created_at",
        alm_api_time(PQgetvalue(res, row, 10)), "updated_at",
        alm_api_time(PQgetvalue(res, row, 11)), "processed_at",
        PQgetisnull(res, row, 12) ? json_null() : alm_api_time(PQgetvalue(res, row, 12)));
}

/* The title: the form's "title" field, else the file name without its extension. */
static void default_title(struct upload *up)
{
    const char *dot = strrchr(up->filename, '.');
    size_t len = dot && dot != up->filename ? (size_t)(dot - up->filename) : strlen(up->filename);

    snprintf(up->title, sizeof(up->title), "%.*s", (int)len, up->filename);
}

/* Takes a multipart/form-data body (field "file", optional "title") or a raw body named
 * by ?filename= or X-Filename. Replies itself on failure. */
static bool take_upload_or_reply(struct alm_req *req, struct alm_multipart *mp, struct upload *up)
{
    const char *ctype = alm_req_header(req, "Content-Type");
    const struct alm_buf *body = alm_req_body(req);
    struct alm_errbuf eb = {{0}};
    const char *name, *declared = ctype;

    memset(up, 0, sizeof(*up));
    if (ctype && strncasecmp(ctype, "multipart/form-data", 19) == 0) {
        const struct alm_multipart_part *file, *title;
        if (alm_multipart_parse(ctype, body->data, body->len, mp, &eb)) {
            alm_reply_error(req, ALM_ERR_INVALID, "malformed multipart body: %s", eb.msg);
            return false;
        }
        file = alm_multipart_find(mp, "file");
        if (!file) {
            alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "the form has no \"file\" field");
            return false;
        }
        up->data = file->data;
        up->len = file->len;
        name = file->filename;
        declared = file->content_type;
        title = alm_multipart_find(mp, "title");
        if (title && title->len > 0 && title->len < sizeof(up->title) &&
            alm_text_valid_utf8(title->data, title->len))
            snprintf(up->title, sizeof(up->title), "%.*s", (int)title->len, title->data);
    } else {
        up->data = body->data;
        up->len = body->len;
        name = alm_req_query(req, "filename");
        if (!name)
            name = alm_req_header(req, "X-Filename");
    }
    if (!name || !*name || strlen(name) >= sizeof(up->filename) ||
        !alm_text_valid_utf8(name, strlen(name)) || strpbrk(name, "/\\\r\n")) {
        alm_reply_error(req, ALM_ERR_UNPROCESSABLE,
                        "a file name is required: a multipart \"file\" field with a filename, "
                        "or ?filename= with a raw body");
        return false;
    }
    snprintf(up->filename, sizeof(up->filename), "%s", name);
    if (!up->title[0]) {
        default_title(up);
        up->title_from_filename = true; /* the document's own title will replace it */
    }
    alm_filetype_detect(up->data, up->len, declared, up->filename, up->media_type,
                        sizeof(up->media_type));
    if (!up->media_type[0]) {
        alm_reply_error(req, ALM_ERR_MEDIA_TYPE, "unsupported media type; accepted: %s",
                        alm_filetype_accepted);
        return false;
    }
    if (!declared || !alm_text_charset_param(declared, up->charset, sizeof(up->charset))) {
        if (strcmp(up->media_type, "text/html") == 0)
            alm_text_sniff_html_charset(up->data, up->len, up->charset, sizeof(up->charset));
        else
            snprintf(up->charset, sizeof(up->charset), "utf-8");
    }
    return true;
}

/* Checks size and converts to UTF-8; replies itself on failure. *text is new. */
static bool text_or_reply(struct alm_req *req, const struct upload *up, char **text, size_t *len)
{
    const struct alm_app *app = alm_req_app(req);
    struct alm_errbuf eb = {{0}};
    size_t max = alm_extract_upload_limit(app->cfg, up->media_type);
    enum alm_err err;

    if (up->len > max) {
        alm_reply_error(req, ALM_ERR_TOO_LARGE, "document larger than %zu bytes", max);
        return false;
    }
    if (alm_extract_is_binary(up->media_type)) {
        *text = NULL; /* extracted by the worker, from the original */
        *len = 0;
        return true;
    }
    err = alm_text_to_utf8(up->charset, up->data, up->len, max * 4, text, len, &eb);
    if (err == ALM_ERR_MEDIA_TYPE) {
        alm_reply_error(req, err, "unknown charset '%s'", up->charset);
        return false;
    }
    if (err) {
        alm_reply_error(req, err == ALM_ERR_TOO_LARGE ? err : ALM_ERR_UNPROCESSABLE,
                        "document is not valid %s text: %s", up->charset, eb.msg);
        return false;
    }
    if (*len == 0 || strspn(*text, " \t\r\n") == *len) {
        ALM_FREE(*text);
        alm_reply_error(req, ALM_ERR_UNPROCESSABLE, "document is empty");
        return false;
    }
    return true;
}

/* 409 naming the document that already holds this content. */
static void reply_duplicate(struct alm_req *req, PGconn *conn, const char *kb, const char *sha)
{
    const struct alm_app *app = alm_req_app(req);
    const char *params[2] = {kb, sha};
    PGresult *res = NULL;
    struct alm_errbuf eb = {{0}};
    long long id = 0;

    if (!alm_db_query(conn, (int)app->cfg->db_timeout_ms,
                      "SELECT id FROM documents WHERE knowledge_base_id = $1 AND sha256 = $2", 2,
                      params, &res, &eb) &&
        PQntuples(res) > 0)
        id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    alm_reply_json(req, 409,
                   json_pack("{s:{s:s, s:s, s:I, s:s}}", "error", "code", "conflict", "message",
                             "the same content is already a document of this knowledge base",
                             "document_id", (json_int_t)id, "request_id", alm_req_id(req)));
}

/* Inserts the document and its ingest job in one transaction. */
static enum alm_err insert_document(struct alm_req *req, PGconn *conn, const char *kb,
                                    const struct upload *up, const char *text, const char *sha,
                                    PGresult **res, struct alm_errbuf *eb)
{
    const struct alm_app *app = alm_req_app(req);
    int t = (int)app->cfg->db_timeout_ms;
    /* The row carries the document twice (text and original, hex-encoded): a write of
     * tens of MiB that a busy server takes longer than one ordinary statement over. Each
     * MiB adds a second, for this transaction only. */
    int t_write = t + (int)(up->len >> 20) * 1000;
    char size[24];
    char *hex = alm_xmalloc(up->len * 2 + 3);
    const char *params[9] = {kb,
                             up->title,
                             up->filename,
                             up->media_type,
                             size,
                             sha,
                             text ? text : "",
                             hex,
                             alm_db_bool(up->title_from_filename)};
    enum alm_err err;
    json_t *job;

    snprintf(size, sizeof(size), "%zu", up->len);
    /* bytea in its text form: "\x" and hex digits */
    hex[0] = '\\';
    hex[1] = 'x';
    sodium_bin2hex(hex + 2, up->len * 2 + 1, (const unsigned char *)up->data, up->len);
    err = alm_db_begin(conn, t, eb);
    if (!err && t_write > t)
        err = alm_db_allow_ms(conn, t_write, eb);
    if (!err)
        err = alm_db_query(conn, t_write,
                           "WITH d AS (INSERT INTO documents (knowledge_base_id, title, filename, "
                           "media_type, size_bytes, sha256, content, original, "
                           "title_from_filename) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::bytea, "
                           "$9) RETURNING *) SELECT " DOC_COLUMNS " FROM d",
                           9, params, res, eb);
    free(hex);
    if (err)
        return err;
    job = json_pack("{s:I}", "document_id", (json_int_t)strtoll(PQgetvalue(*res, 0, 0), NULL, 10));
    char *payload = json_dumps(job, JSON_COMPACT);
    const char *p_job[2] = {kb, payload};
    err = alm_db_query(conn, t,
                       "INSERT INTO outbox (queue, job_type, payload) VALUES "
                       "(" ALM_INGEST_QUEUE_SQL("$1::bigint") ", 'ingest', $2::jsonb)",
                       2, p_job, NULL, eb);
    free(payload);
    json_decref(job);
    if (!err)
        err = alm_db_commit(conn, t_write, eb);
    return err;
}

void alm_api_docs_upload(struct alm_req *req)
{
    struct alm_app *app = alm_req_app(req);
    PGconn *conn = alm_api_db_or_reply(req);
    struct alm_multipart *mp = alm_xmalloc(sizeof(*mp));
    struct upload up;
    struct alm_user me;
    struct alm_errbuf eb = {{0}};
    PGresult *res = NULL;
    char *text = NULL, kb[ALM_API_ID_TEXT], sha[65];
    unsigned char digest[crypto_hash_sha256_BYTES];
    size_t len = 0;
    int64_t kbid;
    enum alm_err err;

    if (!conn || !alm_api_user_or_reply(req, conn, &me) || !alm_api_id_or_reply(req, 0, &kbid) ||
        !alm_api_kb_visible_or_reply(req, conn, &me, kbid) || !take_upload_or_reply(req, mp, &up) ||
        !text_or_reply(req, &up, &text, &len))
        goto out;
    /* text: the UTF-8 text, as before; binary formats: the bytes */
    crypto_hash_sha256(digest, (const unsigned char *)(text ? text : up.data), text ? len : up.len);
    sodium_bin2hex(sha, sizeof(sha), digest, sizeof(digest));
    err = insert_document(req, conn, alm_api_id_text(kbid, kb), &up, text, sha, &res, &eb);
    if (err == ALM_ERR_CONFLICT) {
        alm_db_rollback(conn, (int)app->cfg->db_timeout_ms);
        reply_duplicate(req, conn, kb, sha);
        goto out;
    }
    if (err) {
        alm_api_reply_err(req, err, &eb);
        goto out;
    }
    alm_relayer_kick(app->relayer);
    alm_info("documents.uploaded", "document accepted", "{s:s, s:s, s:s, s:I}", "document_id",
             PQgetvalue(res, 0, 0), "kb_id", kb, "media_type", up.media_type, "bytes",
             (json_int_t)up.len);
    alm_reply_json(req, 202, doc_json(res, 0));
out:
    PQclear(res);
    free(text);
    free(mp);
    alm_api_db_put(req, conn);
}

void alm_api_docs_list(struct alm_req *req)
{
    PGconn *conn = alm_api_db_or_reply(req);
    const char *status = alm_req_query(req, "status");
    struct alm_user me;
    struct alm_page page;
    int64_t kbid;
    char kb[ALM_API_ID_TEXT];

    if (!conn || !alm_api_user_or_reply(req, conn, &me) || !alm_api_id_or_reply(req, 0, &kbid) ||
        !alm_api_page_or_reply(req, &page) || !alm_api_kb_visible_or_reply(req, conn, &me, kbid))
        goto out;
    if (status && strcmp(status, "pending") != 0 && strcmp(status, "processing") != 0 &&
        strcmp(status, "ready") != 0 && strcmp(status, "failed") != 0) {
        alm_reply_error(req, ALM_ERR_INVALID,
                        "status must be pending, processing, ready or failed");
        goto out;
    }
    const char *params[4] = {alm_api_id_text(kbid, kb), page.cursor, page.fetch, status};
    alm_api_reply_page(req, conn, &page,
                       "SELECT " DOC_COLUMNS " FROM documents d "
                       "WHERE d.knowledge_base_id = $1 AND ($2 = 0 OR d.id < $2) "
                       "AND ($4::text IS NULL OR d.status = $4) "
                       "ORDER BY d.id DESC LIMIT $3",
                       4, params, "documents", doc_json);
out:
    alm_api_db_put(req, conn);
}

/* A document of /documents/{id} that the signed-in user may see: the connection, the
 * path's id and the row that the handler's query returned. */
struct visible_doc {
    PGconn *conn;
    int64_t id;
    const PGresult *row;
};

/* For the handlers of /documents/{id}: runs sql ($1 the path's id, $2 user, $3 whether
 * admin) on that document if the signed-in user may see it, and hands its row to reply.
 * Every failure is replied here (404 when sql returns no row). */
static void with_visible_doc(struct alm_req *req, const char *sql,
                             void (*reply)(struct alm_req *req, const struct visible_doc *doc))
{
    PGconn *conn = alm_api_db_or_reply(req);
    struct visible_doc doc = {.conn = conn};
    struct alm_user me;
    char ids[ALM_API_ID_TEXT], uid[ALM_API_ID_TEXT];
    PGresult *res = NULL;

    if (conn && alm_api_user_or_reply(req, conn, &me) && alm_api_id_or_reply(req, 0, &doc.id)) {
        const char *params[3] = {alm_api_id_text(doc.id, ids), alm_api_id_text(me.id, uid),
                                 alm_db_bool(alm_api_is_admin(&me))};
        res = alm_api_row_or_reply(req, conn, sql, 3, params, "document", doc.id);
    }
    if (res) {
        doc.row = res;
        reply(req, &doc);
    }
    PQclear(res);
    alm_api_db_put(req, conn);
}

static void reply_doc(struct alm_req *req, const struct visible_doc *doc)
{
    alm_reply_json(req, 200, doc_json(doc->row, 0));
}

void alm_api_docs_get(struct alm_req *req)
{
    with_visible_doc(req, "SELECT " DOC_COLUMNS DOC_VISIBLE, reply_doc);
}

static void reply_content(struct alm_req *req, const struct visible_doc *doc)
{
    const PGresult *res = doc->row;

    alm_reply_json(req, 200,
                   json_pack("{s:I, s:s, s:s, s:s, s:o, s:s}", "id", (json_int_t)doc->id, "title",
                             PQgetvalue(res, 0, 1), "media_type", PQgetvalue(res, 0, 2), "content",
                             PQgetvalue(res, 0, 3), "text", nullable(res, 0, 4), "status",
                             PQgetvalue(res, 0, 5)));
}

void alm_api_docs_content(struct alm_req *req)
{
    with_visible_doc(req,
                     "SELECT d.id, d.title, d.media_type, d.content, d.text, d.status" DOC_VISIBLE,
                     reply_content);
}

static void reply_file(struct alm_req *req, const struct visible_doc *doc)
{
    const PGresult *res = doc->row;
    size_t n = 0;
    unsigned char *bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 2), &n);
    char *copy = alm_xmalloc(n + 1), disp[600], *name = alm_xstrdup(PQgetvalue(res, 0, 1));
    const char *mt = PQgetvalue(res, 0, 0);

    for (char *p = name; *p; p++) {
        if (*p == '"' || (unsigned char)*p < 0x20)
            *p = '_'; /* a quoted-string may hold neither */
    }
    snprintf(disp, sizeof(disp), "attachment; filename=\"%s\"", name);
    if (bytes)
        memcpy(copy, bytes, n);
    PQfreemem(bytes);
    alm_reply_header(req, "Content-Disposition", disp);
    alm_reply_header(req, "X-Content-Type-Options", "nosniff");
    alm_reply_raw(req, 200, mt, copy, n);
    free(name);
}

/* The uploaded file as it came; documents from before files were kept serve their
 * stored UTF-8 content. */
void alm_api_docs_file(struct alm_req *req)
{
    with_visible_doc(req,
                     "SELECT d.media_type, d.filename, "
                     "coalesce(d.original, convert_to(d.content, 'UTF8'))" DOC_VISIBLE,
                     reply_file);
}

static void delete_doc(struct alm_req *req, const struct visible_doc *doc)
{
    struct alm_errbuf eb = {{0}};
    json_t *job = json_pack("{s:I, s:I}", "document_id", (json_int_t)doc->id, "knowledge_base_id",
                            (json_int_t)strtoll(PQgetvalue(doc->row, 0, 0), NULL, 10));
    enum alm_err err =
        alm_api_change_with_job(req, doc->conn, "DELETE FROM documents WHERE id = $1", doc->id,
                                ALM_QUEUE_MAINTENANCE, "purge_vectors", job, NULL, &eb);

    if (err) {
        alm_api_reply_err(req, err, &eb);
        return;
    }
    alm_info("documents.deleted", "document deleted", "{s:I}", "document_id", (json_int_t)doc->id);
    alm_reply_json(req, 200, json_pack("{s:I, s:b}", "id", (json_int_t)doc->id, "deleted", 1));
}

void alm_api_docs_delete(struct alm_req *req)
{
    with_visible_doc(req, "SELECT d.knowledge_base_id" DOC_VISIBLE, delete_doc);
}

/* One queued job per document: a document that is pending or processing already has its
 * job, so reprocessing it adds nothing and answers its state as it is (202). The check and
 * the enqueue are one statement, so parallel calls queue one job at most. */
static void reprocess_doc(struct alm_req *req, const struct visible_doc *doc)
{
    struct alm_app *app = alm_req_app(req);
    char ids[ALM_API_ID_TEXT];
    const char *params[1] = {alm_api_id_text(doc->id, ids)};
    PGresult *queued = NULL;

    if (!alm_api_query_or_reply(
            req, doc->conn,
            "WITH d AS (UPDATE documents SET status = 'pending', error = NULL, attempts = 0, "
            "updated_at = now() WHERE id = $1 AND status NOT IN ('pending', 'processing') "
            "RETURNING *), "
            "j AS (INSERT INTO outbox (queue, job_type, payload) SELECT " ALM_INGEST_QUEUE_SQL(
                "d.knowledge_base_id") ", 'ingest', jsonb_build_object('document_id', d.id) FROM "
                                       "d) "
                                       "SELECT " DOC_COLUMNS " FROM d",
            1, params, &queued)) {
        PQclear(queued);
        return;
    }
    if (PQntuples(queued) > 0) {
        alm_relayer_kick(app->relayer);
        alm_info("documents.reprocess", "document queued again", "{s:I}", "document_id",
                 (json_int_t)doc->id);
        alm_reply_json(req, 202, doc_json(queued, 0));
    } else {
        /* its job is queued or running already: the state as it is */
        alm_reply_json(req, 202, doc_json(doc->row, 0));
    }
    PQclear(queued);
}

void alm_api_docs_reprocess(struct alm_req *req)
{
    with_visible_doc(req, "SELECT " DOC_COLUMNS DOC_VISIBLE, reprocess_doc);
}
