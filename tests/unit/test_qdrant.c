/* SPDX-License-Identifier: Apache-2.0 */
/* The Qdrant client: point ids, and every call against a tiny in-process HTTP server
 * (libmicrohttpd on 127.0.0.1) that records requests and plays canned replies shaped like
 * the Qdrant OpenAPI contract's. */
#include "unit.h"
#include "qdrant.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---------------------------------------------------------------- the server */

#define MAX_REPLIES  8
#define MAX_REQUESTS 16
#define HUGE_REPLY   ((size_t)33 << 20) /* over the client's 32 MiB cap */

enum huge { NOT_HUGE, HUGE_SIZED, HUGE_CHUNKED };

struct canned {
    unsigned status;
    const char *body;
    enum huge huge; /* instead of body: HUGE_REPLY spaces, with or without Content-Length */
};

struct recorded {
    char method[8];
    char path[256];
    char wait[8]; /* the "wait" query argument, "" when absent */
    char api_key[64];
    json_t *body; /* parsed; NULL when none or not JSON */
};

struct server {
    struct MHD_Daemon *mhd;
    unsigned short port;
    pthread_mutex_t lock;
    struct canned replies[MAX_REPLIES]; /* played in order; the last one repeats */
    size_t n_replies, next_reply;
    struct recorded requests[MAX_REQUESTS];
    size_t n_requests;
};

struct upload {
    char *data;
    size_t len;
};

static ssize_t filler(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    if (pos >= HUGE_REPLY)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (max > HUGE_REPLY - pos)
        max = (size_t)(HUGE_REPLY - pos);
    memset(buf, ' ', max);
    return (ssize_t)max;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    struct server *s = cls;
    struct upload *up = *con_cls;
    struct MHD_Response *resp;
    struct canned reply;
    enum MHD_Result ret;
    (void)version;

    if (!up) {
        *con_cls = up = calloc(1, sizeof(*up));
        return up ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size > 0) {
        up->data = realloc(up->data, up->len + *upload_data_size + 1);
        memcpy(up->data + up->len, upload_data, *upload_data_size);
        up->len += *upload_data_size;
        up->data[up->len] = '\0';
        *upload_data_size = 0;
        return MHD_YES;
    }

    pthread_mutex_lock(&s->lock);
    if (s->n_requests < MAX_REQUESTS) {
        struct recorded *r = &s->requests[s->n_requests++];
        const char *wait = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "wait");
        const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "api-key");
        snprintf(r->method, sizeof(r->method), "%s", method);
        snprintf(r->path, sizeof(r->path), "%s", url);
        snprintf(r->wait, sizeof(r->wait), "%s", wait ? wait : "");
        snprintf(r->api_key, sizeof(r->api_key), "%s", key ? key : "");
        r->body = up->data ? json_loadb(up->data, up->len, 0, NULL) : NULL;
    }
    reply = s->replies[s->next_reply];
    if (s->next_reply + 1 < s->n_replies)
        s->next_reply++;
    pthread_mutex_unlock(&s->lock);

    if (reply.huge == NOT_HUGE)
        resp = MHD_create_response_from_buffer(strlen(reply.body), (void *)(uintptr_t)reply.body,
                                               MHD_RESPMEM_PERSISTENT);
    else
        resp = MHD_create_response_from_callback(reply.huge == HUGE_SIZED ? HUGE_REPLY
                                                                          : MHD_SIZE_UNKNOWN,
                                                 64 * 1024, filler, NULL, NULL);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    ret = MHD_queue_response(conn, reply.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode code)
{
    struct upload *up = *con_cls;
    (void)cls;
    (void)conn;
    (void)code;
    if (up) {
        free(up->data);
        free(up);
        *con_cls = NULL;
    }
}

static struct server *server_start(void)
{
    struct server *s = calloc(1, sizeof(*s));
    struct sockaddr_in addr;

    assert_non_null(s);
    pthread_mutex_init(&s->lock, NULL);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    s->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                              NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                              MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_END);
    assert_non_null(s->mhd);
    s->port = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT)->port;
    assert_true(s->port > 0);
    return s;
}

static void server_stop(struct server *s)
{
    MHD_stop_daemon(s->mhd);
    for (size_t i = 0; i < s->n_requests; i++)
        json_decref(s->requests[i].body);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Queues the next canned reply. */
static void reply(struct server *s, unsigned status, const char *body)
{
    assert_true(s->n_replies < MAX_REPLIES);
    s->replies[s->n_replies].status = status;
    s->replies[s->n_replies].body = body;
    s->replies[s->n_replies].huge = NOT_HUGE;
    s->n_replies++;
}

static void reply_huge(struct server *s, enum huge huge)
{
    reply(s, 200, NULL);
    s->replies[s->n_replies - 1].huge = huge;
}

static const struct recorded *request(struct server *s, size_t i)
{
    assert_true(i < s->n_requests);
    return &s->requests[i];
}

static struct alm_qdrant *client_for(unsigned short port, const char *api_key)
{
    struct alm_config cfg;
    char url[64];

    memset(&cfg, 0, sizeof(cfg));
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
    cfg.qdrant_url = url;
    cfg.qdrant_api_key = (char *)(uintptr_t)api_key;
    return alm_qdrant_new(&cfg);
}

struct fixture {
    struct server *srv;
    struct alm_qdrant *q;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->srv = server_start();
    f->q = client_for(f->srv->port, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    alm_qdrant_free(f->q);
    server_stop(f->srv);
    free(f);
    return 0;
}

/* The body's value at a json_unpack path, compared as compact JSON. */
static void assert_json(json_t *value, const char *expected)
{
    json_t *want = json_loads(expected, 0, NULL);
    assert_non_null(want);
    if (!json_equal(value, want)) {
        char *got = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(stderr, "got:  %s\nwant: %s\n", got ? got : "(null)", expected);
        free(got);
        fail();
    }
    json_decref(want);
}

#define UPDATED                                                                                    \
    "{\"result\":{\"operation_id\":1,\"status\":\"completed\"},\"status\":\"ok\",\"time\":0.001}"
#define NOTFOUND                                                                                   \
    "{\"status\":{\"error\":\"Not found: Collection `docs` doesn't exist!\"},\"time\":0.0}"
#define INFO_768                                                                                   \
    "{\"result\":{\"status\":\"green\",\"optimizer_status\":\"ok\",\"segments_count\":2,"          \
    "\"points_count\":10,\"config\":{\"params\":{\"vectors\":{\"size\":768,\"distance\":"          \
    "\"Cosine\"}},\"hnsw_config\":{},\"optimizer_config\":{}},\"payload_schema\":{"                \
    "\"knowledge_base_id\":{\"data_type\":\"integer\",\"points\":10},\"document_id\":{"            \
    "\"data_type\":\"integer\",\"points\":10}}},\"status\":\"ok\",\"time\":0.001}"

/* ---------------------------------------------------------------- point ids */

static void point_id_known_values(void **state)
{
    char id[37];
    (void)state;
    /* python3: ns = uuid.uuid5(uuid.NAMESPACE_URL, "urn:almanac:qdrant-point");
     * uuid.uuid5(ns, "1:0") and so on */
    alm_qdrant_point_id(1, 0, id);
    assert_string_equal(id, "b038b7e1-0bc8-54c6-9541-1a2765969d37");
    alm_qdrant_point_id(42, 7, id);
    assert_string_equal(id, "d754ae9e-292d-5488-a343-149c0db4adf4");
    alm_qdrant_point_id(INT64_MAX, 2147483647, id);
    assert_string_equal(id, "1ec7697e-e491-5406-9f0b-8bfbfc489547");
    alm_qdrant_point_id(-5, 0, id);
    assert_string_equal(id, "8fd37cb3-240b-5e1d-a91f-d792989ec79f");
}

static void point_id_format_and_determinism(void **state)
{
    char a[37], b[37], c[37];
    (void)state;
    for (int chunk = 0; chunk < 50; chunk++) {
        alm_qdrant_point_id(1234, chunk, a);
        alm_qdrant_point_id(1234, chunk, b);
        assert_string_equal(a, b);
        assert_int_equal(strlen(a), 36);
        for (int i = 0; i < 36; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23)
                assert_int_equal(a[i], '-');
            else
                assert_non_null(strchr("0123456789abcdef", a[i]));
        }
        assert_int_equal(a[14], '5');            /* version 5 */
        assert_non_null(strchr("89ab", a[19]));  /* RFC 4122 variant */
        alm_qdrant_point_id(1234, chunk + 1, c); /* neighbours differ */
        assert_string_not_equal(a, c);
    }
    alm_qdrant_point_id(12, 34, a);
    alm_qdrant_point_id(123, 4, b); /* "12:34" vs "123:4" */
    assert_string_not_equal(a, b);
}

/* ---------------------------------------------------------------- collections */

static void ensure_creates_missing_collection(void **state)
{
    struct fixture *f = *state;
    struct alm_errbuf eb = {{0}};

    reply(f->srv, 404, NOTFOUND);
    reply(f->srv, 200, "{\"result\":true,\"status\":\"ok\",\"time\":0.1}");
    reply(f->srv, 200, UPDATED);
    assert_int_equal(alm_qdrant_ensure_collection(f->q, "docs", 768, 2000, &eb), ALM_OK);
    assert_int_equal(f->srv->n_requests, 4);
    assert_string_equal(request(f->srv, 0)->method, "GET");
    assert_string_equal(request(f->srv, 0)->path, "/collections/docs");
    assert_string_equal(request(f->srv, 1)->method, "PUT");
    assert_string_equal(request(f->srv, 1)->path, "/collections/docs");
    assert_json(request(f->srv, 1)->body, "{\"vectors\":{\"size\":768,\"distance\":\"Cosine\"}}");
    for (size_t i = 2; i < 4; i++) {
        assert_string_equal(request(f->srv, i)->method, "PUT");
        assert_string_equal(request(f->srv, i)->path, "/collections/docs/index");
        assert_string_equal(request(f->srv, i)->wait, "true");
    }
    assert_json(request(f->srv, 2)->body,
                "{\"field_name\":\"knowledge_base_id\",\"field_schema\":\"integer\"}");
    assert_json(request(f->srv, 3)->body,
                "{\"field_name\":\"document_id\",\"field_schema\":\"integer\"}");
}

static void ensure_accepts_existing_collection(void **state)
{
    struct fixture *f = *state;
    struct alm_errbuf eb = {{0}};

    reply(f->srv, 200, INFO_768);
    assert_int_equal(alm_qdrant_ensure_collection(f->q, "docs", 768, 2000, &eb), ALM_OK);
    assert_int_equal(f->srv->n_requests, 1); /* indexes present: nothing to create */
}

static void ensure_reports_dimension_conflict(void **state)
{
    struct fixture *f = *state;
    struct alm_errbuf eb = {{0}};

    reply(f->srv, 200, INFO_768);
    assert_int_equal(alm_qdrant_ensure_collection(f->q, "docs", 1536, 2000, &eb), ALM_ERR_CONFLICT);
    assert_string_equal(eb.msg, "collection docs has dimension 768, the embedder produces 1536");
    assert_int_equal(f->srv->n_requests, 1);
}

static void ensure_tolerates_creation_race(void **state)
{
    struct fixture *f = *state;
    struct alm_errbuf eb = {{0}};

    reply(f->srv, 404, NOTFOUND);
    reply(f->srv, 409,
          "{\"status\":{\"error\":\"Wrong input: Collection `docs` already exists!\"},\"time\":0}");
    reply(f->srv, 200, INFO_768);
    assert_int_equal(alm_qdrant_ensure_collection(f->q, "docs", 768, 2000, &eb), ALM_OK);
    assert_int_equal(f->srv->n_requests, 3);
    assert_string_equal(request(f->srv, 2)->method, "GET");
}

/* ---------------------------------------------------------------- points */

static void upsert_body_shape(void **state)
{
    struct fixture *f = *state;
    struct alm_errbuf eb = {{0}};
    const float v0[3] = {0.5f, -0.25f, 1.0f}, v1[3] = {0.0f, 1.0f, 0.125f};
    struct alm_qdrant_point pts[2];
    json_t *body, *p;

    alm_qdrant_point_id(7, 0, pts[0].id);
    alm_qdrant_point_id(7, 1, pts[1].id);
    pts[0].vector = v0;
    pts[1].vector = v1;
    pts[0].payload = json_pack("{s:I, s:I, s:i}", "knowledge_base_id", (json_int_t)3, "document_id",
                               (json_int_t)7, "chunk_index", 0);
    pts[1].payload = json_pack("{s:I, s:I, s:i}", "knowledge_base_id", (json_int_t)3, "document_id",
                               (json_int_t)7, "chunk_index", 1);
    reply(f->srv, 200, UPDATED);
    assert_int_equal(alm_qdrant_upsert(f->q, "docs", pts, 2, 3, 2000, &eb), ALM_OK);
    assert_int_equal(f->srv->n_requests, 1);
    assert_string_equal(request(f->srv, 0)->method, "PUT");
    assert_string_equal(request(f->srv, 0)->path, "/collections/docs/points");
    assert_string_equal(request(f->srv, 0)->wait, "true");
    body = request(f->srv, 0)->body;
    assert_int_equal(json_object_size(body), 1);
    assert_int_equal(json_array_size(json_object_get(body, "points")), 2);
    p = json_array_get(json_object_get(body, "points"), 0);
    assert_string_equal(json_string_value(json_object_get(p, "id")), pts[0].id);
    assert_json(json_object_get(p, "vector"), "[0.5,-0.25,1.0]");
    assert_json(json_object_get(p, "payload"),
                "{\"knowledge_base_id\":3,\"document_id\":7,\"chunk_index\":0}");
    p = json_array_get(json_object_get(body, "points"), 1);
    assert_string_equal(json_string_value(json_object_get(p, "id")), pts[1].id);
    assert_json(json_object_get(p, "vector"), "[0.0,1.0,0.125]");
    assert_json(json_object_get(p, "payload"),
                "{\"knowledge_base_id\":3,\"document_id\":7,\"chunk_index\":1}");
    /* payloads are borrowed: still ours */
    assert_int_equal(pts[0].payload->refcount, 1);
    json_decref(pts[0].payload);
    json_decref(pts[1].payload);
}

static void upsert_refuses_non_finite(void **state)
{
    struct fixture *f = *state;
    struct alm_errbuf eb = {{0}};
    float v[2] = {1.0f, 0.0f};
    struct alm_qdrant_point pt = {{0}, v, NULL};

    v[1] = NAN;
    alm_qdrant_point_id(1, 0, pt.id);
    assert_int_equal(alm_qdrant_upsert(f->q, "docs", &pt, 1, 2, 2000, &eb), ALM_ERR_INVALID);
    assert_int_equal(f->srv->n_requests, 0);
}

static void delete_filters(void **state)
{
    struct fixture *f = *state;
    struct alm_errbuf eb = {{0}};

    reply(f->srv, 200, UPDATED);
    assert_int_equal(alm_qdrant_delete_where(f->q, "docs", "document_id", 42, -1, 2000, &eb),
                     ALM_OK);
    assert_int_equal(alm_qdrant_delete_where(f->q, "docs", "document_id", 42, 5, 2000, &eb),
                     ALM_OK);
    assert_int_equal(alm_qdrant_delete_where(f->q, "docs", "knowledge_base_id", 9, -1, 2000, &eb),
                     ALM_OK);
    assert_int_equal(f->srv->n_requests, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(request(f->srv, i)->method, "POST");
        assert_string_equal(request(f->srv, i)->path, "/collections/docs/points/delete");
        assert_string_equal(request(f->srv, i)->wait, "true");
    }
    assert_json(request(f->srv, 0)->body,
                "{\"filter\":{\"must\":[{\"key\":\"document_id\",\"match\":{\"value\":42}}]}}");
    assert_json(request(f->srv, 1)->body,
                "{\"filter\":{\"must\":[{\"key\":\"document_id\",\"match\":{\"value\":42}},"
                "{\"key\":\"chunk_index\",\"range\":{\"gte\":5}}]}}");
    assert_json(
        request(f->srv, 2)->body,
        "{\"filter\":{\"must\":[{\"key\":\"knowledge_base_id\",\"match\":{\"value\":9}}]}}");
}

static void count_document(void **state)
{
    struct fixture *f = *state;
    struct alm_errbuf eb = {{0}};
    int64_t count = -1;

    reply(f->srv, 200, "{\"result\":{\"count\":17},\"status\":\"ok\",\"time\":0.001}");
    assert_int_equal(alm_qdrant_count_document(f->q, "docs", 42, &count, 2000, &eb), ALM_OK);
    assert_int_equal(count, 17);
    assert_string_equal(request(f->srv, 0)->method, "POST");
    assert_string_equal(request(f->srv, 0)->path, "/collections/docs/points/count");
    assert_json(request(f->srv, 0)->body,
                "{\"filter\":{\"must\":[{\"key\":\"document_id\",\"match\":{\"value\":42}}]},"
                "\"exact\":true}");
}

static void count_rejects_odd_reply(void **state)
{
    struct fixture *f = *state;
    struct alm_errbuf eb = {{0}};
    int64_t count = -1;

    reply(f->srv, 200, "{\"result\":{\"points\":17},\"status\":\"ok\"}");
    assert_int_equal(alm_qdrant_count_document(f->q, "docs", 42, &count, 2000, &eb),
                     ALM_ERR_UPSTREAM);
    assert_non_null(strstr(eb.msg, "count"));
}

static void query_parses_hits(void **state)
{
    struct fixture *f = *state;
    struct alm_errbuf eb = {{0}};
    const float v[2] = {0.6f, 0.8f};
    const int64_t kbs[3] = {3, 5, 3};
    struct alm_qdrant_hit *hits = NULL;
    size_t n = 0;

    /* deliberately not best first: the client orders them */
    reply(f->srv, 200,
          "{\"result\":{\"points\":["
          "{\"id\":\"b038b7e1-0bc8-54c6-9541-1a2765969d37\",\"version\":1,\"score\":0.5,"
          "\"payload\":{\"document_id\":1,\"chunk_index\":0}},"
          "{\"id\":\"d754ae9e-292d-5488-a343-149c0db4adf4\",\"version\":3,\"score\":0.9,"
          "\"payload\":{\"document_id\":42,\"chunk_index\":7}},"
          "{\"id\":\"8fd37cb3-240b-5e1d-a91f-d792989ec79f\",\"version\":2,\"score\":0.75,"
          "\"payload\":{\"document_id\":5,\"chunk_index\":2}}]},\"status\":\"ok\",\"time\":0.002}");
    assert_int_equal(alm_qdrant_query(f->q, "docs", v, 2, kbs, 3, 10, 2000, &hits, &n, &eb),
                     ALM_OK);
    assert_int_equal(n, 3);
    assert_int_equal(hits[0].document_id, 42);
    assert_int_equal(hits[0].chunk_index, 7);
    assert_true(hits[0].score > 0.89 && hits[0].score < 0.91);
    assert_int_equal(hits[1].document_id, 5);
    assert_int_equal(hits[1].chunk_index, 2);
    assert_int_equal(hits[2].document_id, 1);
    assert_int_equal(hits[2].chunk_index, 0);
    free(hits);

    assert_string_equal(request(f->srv, 0)->method, "POST");
    assert_string_equal(request(f->srv, 0)->path, "/collections/docs/points/query");
    assert_json(request(f->srv, 0)->body,
                "{\"query\":[0.6000000238418579,0.800000011920929],"
                "\"filter\":{\"must\":[{\"key\":\"knowledge_base_id\",\"match\":{\"any\":[3,5]}}]},"
                "\"limit\":10,\"with_payload\":[\"document_id\",\"chunk_index\"]}");
}

static void query_empty_and_malformed(void **state)
{
    struct fixture *f = *state;
    struct alm_errbuf eb = {{0}};
    const float v[2] = {1.0f, 0.0f};
    const int64_t kb = 1;
    struct alm_qdrant_hit *hits = NULL;
    size_t n = 99;

    reply(f->srv, 200, "{\"result\":{\"points\":[]},\"status\":\"ok\",\"time\":0}");
    reply(f->srv, 200,
          "{\"result\":{\"points\":[{\"id\":1,\"version\":1,\"score\":0.5,\"payload\":{}}]},"
          "\"status\":\"ok\"}");
    reply(f->srv, 200, "{\"result\":[],\"status\":\"ok\"}");
    reply(f->srv, 404, NOTFOUND);
    assert_int_equal(alm_qdrant_query(f->q, "docs", v, 2, &kb, 1, 5, 2000, &hits, &n, &eb), ALM_OK);
    assert_int_equal(n, 0);
    free(hits);
    assert_int_equal(alm_qdrant_query(f->q, "docs", v, 2, &kb, 1, 5, 2000, &hits, &n, &eb),
                     ALM_ERR_UPSTREAM);
    assert_null(hits);
    assert_int_equal(alm_qdrant_query(f->q, "docs", v, 2, &kb, 1, 5, 2000, &hits, &n, &eb),
                     ALM_ERR_UPSTREAM);
    assert_int_equal(alm_qdrant_query(f->q, "docs", v, 2, &kb, 1, 5, 2000, &hits, &n, &eb),
                     ALM_ERR_NOT_FOUND);
    assert_string_equal(eb.msg, "collection docs missing");
    assert_int_equal(alm_qdrant_query(f->q, "docs", v, 2, &kb, 0, 5, 2000, &hits, &n, &eb),
                     ALM_ERR_INVALID);
}

/* ---------------------------------------------------------------- failures */

static void server_error_is_upstream(void **state)
{
    struct fixture *f = *state;
    struct alm_errbuf eb = {{0}};
    int64_t count;

    reply(f->srv, 500, "{\"status\":{\"error\":\"Service internal error: boom\"},\"time\":0}");
    assert_int_equal(alm_qdrant_count_document(f->q, "docs", 1, &count, 2000, &eb),
                     ALM_ERR_UPSTREAM);
    assert_non_null(strstr(eb.msg, "500"));
    assert_int_equal(alm_qdrant_delete_where(f->q, "docs", "document_id", 1, -1, 2000, &eb),
                     ALM_ERR_UPSTREAM);
    assert_int_equal(alm_qdrant_ensure_collection(f->q, "docs", 4, 2000, &eb), ALM_ERR_UPSTREAM);
}

static void oversized_reply_is_too_large(void **state)
{
    struct fixture *f = *state;
    struct alm_errbuf eb = {{0}};
    int64_t count;

    reply_huge(f->srv, HUGE_SIZED);   /* refused from its Content-Length */
    reply_huge(f->srv, HUGE_CHUNKED); /* refused once the cap is passed */
    assert_int_equal(alm_qdrant_count_document(f->q, "docs", 1, &count, 10000, &eb),
                     ALM_ERR_TOO_LARGE);
    assert_int_equal(alm_qdrant_count_document(f->q, "docs", 1, &count, 10000, &eb),
                     ALM_ERR_TOO_LARGE);
    assert_non_null(strstr(eb.msg, "larger than"));
}

static void api_key_header_sent(void **state)
{
    struct fixture *f = *state;
    struct alm_errbuf eb = {{0}};
    struct alm_qdrant *keyed = client_for(f->srv->port, "Kq7-unit-api-key");
    int64_t count;

    reply(f->srv, 200, "{\"result\":{\"count\":0},\"status\":\"ok\",\"time\":0}");
    assert_int_equal(alm_qdrant_count_document(f->q, "docs", 1, &count, 2000, &eb), ALM_OK);
    assert_int_equal(alm_qdrant_count_document(keyed, "docs", 1, &count, 2000, &eb), ALM_OK);
    assert_string_equal(request(f->srv, 0)->api_key, "");
    assert_string_equal(request(f->srv, 1)->api_key, "Kq7-unit-api-key");
    alm_qdrant_free(keyed);
}

static void unauthorized_never_quotes_key(void **state)
{
    struct fixture *f = *state;
    struct alm_errbuf eb = {{0}};
    struct alm_qdrant *keyed = client_for(f->srv->port, "Kq7-unit-api-key");
    int64_t count;

    reply(f->srv, 400, "{\"status\":{\"error\":\"bad key Kq7-unit-api-key\"},\"time\":0}");
    assert_int_equal(alm_qdrant_count_document(keyed, "docs", 1, &count, 2000, &eb),
                     ALM_ERR_UPSTREAM);
    assert_null(strstr(eb.msg, "Kq7"));
    alm_qdrant_free(keyed);
}

/* A listening socket that never accepts: the kernel completes the handshake, nobody answers. */
static void hang_is_timeout(void **state)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct alm_qdrant *q;
    struct alm_errbuf eb = {{0}};
    int64_t count;
    (void)state;

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    q = client_for(ntohs(addr.sin_port), NULL);
    assert_int_equal(alm_qdrant_count_document(q, "docs", 1, &count, 200, &eb), ALM_ERR_TIMEOUT);
    assert_string_equal(eb.msg, "timeout after 200 ms");
    alm_qdrant_free(q);
    close(fd);
}

static void refused_is_unavailable(void **state)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct alm_qdrant *q;
    struct alm_errbuf eb = {{0}};
    struct alm_qdrant_hit *hits;
    size_t n;
    const float v[1] = {1.0f};
    const int64_t kb = 1;
    (void)state;

    /* a port that was just free and is closed again */
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    q = client_for(ntohs(addr.sin_port), NULL);
    assert_int_equal(alm_qdrant_query(q, "docs", v, 1, &kb, 1, 3, 2000, &hits, &n, &eb),
                     ALM_ERR_UNAVAILABLE);
    assert_string_equal(eb.msg, "connection refused");
    assert_int_equal(alm_qdrant_ensure_collection(q, "docs", 1, 2000, &eb), ALM_ERR_UNAVAILABLE);
    alm_qdrant_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(point_id_known_values),
        cmocka_unit_test(point_id_format_and_determinism),
        cmocka_unit_test_setup_teardown(ensure_creates_missing_collection, setup, teardown),
        cmocka_unit_test_setup_teardown(ensure_accepts_existing_collection, setup, teardown),
        cmocka_unit_test_setup_teardown(ensure_reports_dimension_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(ensure_tolerates_creation_race, setup, teardown),
        cmocka_unit_test_setup_teardown(upsert_body_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(upsert_refuses_non_finite, setup, teardown),
        cmocka_unit_test_setup_teardown(delete_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(count_document, setup, teardown),
        cmocka_unit_test_setup_teardown(count_rejects_odd_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(query_parses_hits, setup, teardown),
        cmocka_unit_test_setup_teardown(query_empty_and_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(server_error_is_upstream, setup, teardown),
        cmocka_unit_test_setup_teardown(oversized_reply_is_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(api_key_header_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(unauthorized_never_quotes_key, setup, teardown),
        cmocka_unit_test(hang_is_timeout),
        cmocka_unit_test(refused_is_unavailable),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
