/* SPDX-License-Identifier: Apache-2.0 */
/* handlers.h: the /api/v1 routes and what their handlers share.
 *
 * Helpers named *_or_reply answer the request themselves when they fail (401, 404,
 * 503, ...) and return false/NULL: the handler then just returns. */
#pragma once
#include "compat.h"
#include "app.h"
#include "http_server.h"
#include "users.h"

#include <libpq-fe.h>

/* The api's whole route table, probes included: its first ALM_API_PROBE_ROUTES rows are
 * ALM_HEALTH_ROUTES, which the probe listener serves. */
#define ALM_API_PROBE_ROUTES 3
const struct alm_route *alm_api_routes(size_t *n);

/* The signed-in user from "Authorization: Bearer ...", checked against the database
 * (a disabled or deleted user is refused at once). */
bool alm_api_user_or_reply(struct alm_req *req, PGconn *conn, struct alm_user *user);
bool alm_api_admin_or_reply(struct alm_req *req, const struct alm_user *user);
/* The server's admit hook (ALM_ROUTE_AUTH, ALM_ROUTE_KB), run when the request head is
 * complete: the token, and for ALM_ROUTE_KB the account and the knowledge base. */
bool alm_api_admit(struct alm_req *req);
/* A pooled database connection once the schema is current; give it back with
 * alm_api_db_put(). When none is free the request waits suspended, holding no server
 * thread, until one is handed over or ALMANAC_DB_TIMEOUT_MS after its arrival (then 503
 * with Retry-After): NULL without an answer, and the handler runs again from the start
 * (alm_req_resumed() true), so what it did before this call is done again. */
PGconn *alm_api_db_or_reply(struct alm_req *req);
void alm_api_db_put(struct alm_req *req, PGconn *conn);
/* The server's tick (alm_http_opts.tick): ends the waits for a connection past their
 * deadline. */
void alm_api_tick(void *app);
/* The body as a JSON object (new reference). */
json_t *alm_api_json_or_reply(struct alm_req *req);
/* Path placeholder i as a positive id; an invalid one reads as not found. */
bool alm_api_id_or_reply(struct alm_req *req, size_t i, int64_t *id);
/* A page request: ?limit= (1..100, default 20) and ?cursor= (an id from next_cursor),
 * with the text forms a query takes: cursor ("0" when absent) and fetch (limit + 1, so
 * that the extra row tells whether another page follows). */
struct alm_page {
    int limit;
    char cursor[24];
    char fetch[16];
};
bool alm_api_page_or_reply(struct alm_req *req, struct alm_page *page);
/* Replies with one page of a list: runs sql, which takes page->cursor and page->fetch
 * among its params (newest first, LIMIT page->fetch, the id as first column), and replies
 * 200 with {key: [row_json(res, i), ...], "next_cursor"}, or with the query's error. */
void alm_api_reply_page(struct alm_req *req, PGconn *conn, const struct alm_page *page,
                        const char *sql, int nparams, const char *const *params, const char *key,
                        json_t *(*row_json)(const PGresult *res, int row));
/* Replies with a database-layer error: its status and message. */
void alm_api_reply_err(struct alm_req *req, enum alm_err err, const struct alm_errbuf *eb);
/* Runs one statement (alm_db_query) within the configured database timeout; on failure
 * replies with its error and returns false. *res (NULL when not wanted) is the caller's
 * to PQclear either way. */
bool alm_api_query_or_reply(struct alm_req *req, PGconn *conn, const char *sql, int nparams,
                            const char *const *params, PGresult **res);
/* Fetches one row or 404: runs sql (alm_api_query_or_reply) and returns its result, the
 * caller's to PQclear, when it has a row; else NULL once replied: the query's error, or
 * 404 "WHAT ID not found". */
PGresult *alm_api_row_or_reply(struct alm_req *req, PGconn *conn, const char *sql, int nparams,
                               const char *const *params, const char *what, int64_t id);
/* id as the text of a query parameter, written into buf; returns buf. */
#define ALM_API_ID_TEXT 24
const char *alm_api_id_text(int64_t id, char buf[ALM_API_ID_TEXT]);
/* Runs sql ($1 = id) and queues job (taken) through the outbox in one transaction, then
 * kicks the relay. *res (NULL when not wanted) is sql's result, the caller's to PQclear;
 * the caller replies. */
enum alm_err alm_api_change_with_job(struct alm_req *req, PGconn *conn, const char *sql, int64_t id,
                                     const char *queue, const char *type, json_t *job,
                                     PGresult **res, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* A string member of a JSON object, or NULL when absent or not a string. */
const char *alm_api_json_str(const json_t *obj, const char *key);
/* Microseconds-free ISO 8601 of a timestamptz text value, as JSON. */
json_t *alm_api_time(const char *ts);
/* The client's address (X-Real-IP when ALMANAC_TRUST_PROXY=true). */
void alm_api_client_ip(struct alm_req *req, char *out, size_t n);

/* Whether the user may see knowledge base kb (owner or admin); 404 otherwise. */
bool alm_api_kb_visible_or_reply(struct alm_req *req, PGconn *conn, const struct alm_user *user,
                                 int64_t kb);
/* Whether the user has the admin role (sees every knowledge base). */
bool alm_api_is_admin(const struct alm_user *user);

void alm_api_login(struct alm_req *req);
void alm_api_signup(struct alm_req *req);
void alm_api_me(struct alm_req *req);
void alm_api_users_list(struct alm_req *req);
void alm_api_users_create(struct alm_req *req);
void alm_api_users_update(struct alm_req *req);
void alm_api_kbs_create(struct alm_req *req);
void alm_api_kbs_list(struct alm_req *req);
void alm_api_kbs_get(struct alm_req *req);
void alm_api_kbs_update(struct alm_req *req);
void alm_api_kbs_delete(struct alm_req *req);
void alm_api_docs_upload(struct alm_req *req);
void alm_api_docs_list(struct alm_req *req);
void alm_api_docs_get(struct alm_req *req);
void alm_api_docs_delete(struct alm_req *req);
void alm_api_docs_reprocess(struct alm_req *req);
void alm_api_docs_content(struct alm_req *req);
void alm_api_docs_file(struct alm_req *req);
void alm_api_search(struct alm_req *req);
/* The body's "knowledge_base_ids", each readable by the user (404 names the first that is
 * not), or all readable ones when none is named. *kbs is new. */
bool alm_api_search_kbs_or_reply(struct alm_req *req, PGconn *conn, const struct alm_user *me,
                                 const json_t *body, int64_t **kbs, size_t *n);
struct alm_search_hit;
/* One search result as the search API shows it. */
json_t *alm_api_search_hit_json(const struct alm_search_hit *h);
void alm_api_answers(struct alm_req *req);
void alm_api_conversations_list(struct alm_req *req);
void alm_api_conversations_get(struct alm_req *req);
void alm_api_conversations_update(struct alm_req *req);
void alm_api_conversations_delete(struct alm_req *req);
/* Cancels the answers still running and waits (briefly) for their threads: before the
 * http server stops, which it must not do with suspended requests. */
void alm_api_answers_shutdown(void);
/* The answers' Prometheus metrics. */
void alm_api_answers_metrics(struct alm_buf *out);
void alm_api_health_workers(struct alm_req *req);
void alm_api_health_queues(struct alm_req *req);
void alm_api_admin_workers(struct alm_req *req);
void alm_api_admin_queues(struct alm_req *req);
/* GET /api/v1/admin/reindex: the latest `almanac reindex` runs and their progress. */
void alm_api_admin_reindex(struct alm_req *req);
void alm_api_admin_retry_dead(struct alm_req *req);
/* Queue depth, pending, oldest pending age, delayed and dead per queue, for /metrics. */
void alm_api_queue_metrics(void *arg, struct alm_buf *out);
