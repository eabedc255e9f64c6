/* SPDX-License-Identifier: Apache-2.0 */
/* The queue's reading of XREADGROUP and XAUTOCLAIM replies. Each reply is RESP text run
 * through hiredis's own reader, so the trees are the ones a connection would hand over. */
#include "unit.h"
#include "queue.h"

#include <stdio.h>
#include <string.h>

/* RESP text built piece by piece, so that no length is counted by hand. */
struct resp {
    char text[8192];
    size_t n;
};

static void add(struct resp *r, const char *fmt, ...) ALM_PRINTF(2, 3);
static void add(struct resp *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(r->text + r->n, sizeof(r->text) - r->n, fmt, ap);
    va_end(ap);
    assert_true(w > 0 && (size_t)w < sizeof(r->text) - r->n);
    r->n += (size_t)w;
}

static void arr(struct resp *r, int n)
{
    add(r, "*%d\r\n", n);
}

static void bulk(struct resp *r, const char *s)
{
    add(r, "$%zu\r\n%s\r\n", strlen(s), s);
}

/* Any other RESP text, as it is: nil, integers, errors. */
static void raw(struct resp *r, const char *s)
{
    add(r, "%s", s);
}

/* One stream entry with a single field: [id, [field, value]]. */
static void entry(struct resp *r, const char *id, const char *field, const char *value)
{
    arr(r, 2);
    bulk(r, id);
    arr(r, 2);
    bulk(r, field);
    bulk(r, value);
}

/* One stream of an XREADGROUP reply holding one entry. */
static void stream_of_one(struct resp *r, const char *stream, const char *id, const char *job)
{
    arr(r, 2);
    bulk(r, stream);
    arr(r, 1);
    entry(r, id, "job", job);
}

static redisReply *parse(const struct resp *r)
{
    redisReader *rd = redisReaderCreate();
    void *reply = NULL;

    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, r->text, r->n), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_OK);
    assert_non_null(reply); /* the text held a whole reply */
    redisReaderFree(rd);
    return reply;
}

static redisReply *parse_text(const char *text)
{
    struct resp r = {.n = 0};
    raw(&r, text);
    return parse(&r);
}

static const char ingest_job[] = "{\"id\":\"outbox-9f\",\"type\":\"ingest\",\"payload\":"
                                 "{\"document_id\":7},\"attempt\":2,\"enqueued_at\":1}";
static const char purge_job[] = "{\"id\":\"outbox-a0\",\"type\":\"purge_vectors\",\"payload\":"
                                "{\"document_id\":8}}";

static void release_all(struct alm_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        alm_job_release(&jobs[i]);
}

/* Two queues deliver one entry each in one read: both become jobs, in reply order, each
 * with its queue taken from its stream's name. */
static void read_two_streams(void **state)
{
    struct resp r = {.n = 0};
    struct alm_job jobs[ALM_QUEUE_READ_MAX];
    struct alm_errbuf eb = {{0}};
    size_t got = 99;
    (void)state;

    arr(&r, 2);
    stream_of_one(&r, "almanac:queue:ingest", "1700000000000-0", ingest_job);
    stream_of_one(&r, "almanac:queue:maintenance", "1700000000001-3", purge_job);
    redisReply *reply = parse(&r);
    assert_int_equal(alm_queue_read_reply(reply, jobs, &got, &eb), ALM_OK);
    freeReplyObject(reply); /* the jobs own copies of everything */
    assert_int_equal(got, 2);

    assert_string_equal(jobs[0].queue, ALM_QUEUE_INGEST);
    assert_string_equal(jobs[0].entry, "1700000000000-0");
    assert_string_equal(jobs[0].json, ingest_job);
    assert_string_equal(jobs[0].id, "outbox-9f");
    assert_string_equal(jobs[0].type, "ingest");
    assert_int_equal(json_integer_value(json_object_get(jobs[0].payload, "document_id")), 7);
    assert_int_equal(jobs[0].attempt, 2);
    assert_int_equal(jobs[0].deliveries, 1);

    assert_string_equal(jobs[1].queue, ALM_QUEUE_MAINTENANCE);
    assert_string_equal(jobs[1].entry, "1700000000001-3");
    assert_string_equal(jobs[1].type, "purge_vectors");
    assert_int_equal(jobs[1].attempt, 1); /* no attempt field: the first run */
    release_all(jobs, got);
}

/* BLOCK ran out with nothing new: a nil reply, no job. */
static void read_nil(void **state)
{
    struct alm_job jobs[ALM_QUEUE_READ_MAX];
    struct alm_errbuf eb = {{0}};
    size_t got = 99;
    (void)state;

    redisReply *reply = parse_text("*-1\r\n");
    assert_int_equal(reply->type, REDIS_REPLY_NIL);
    assert_int_equal(alm_queue_read_reply(reply, jobs, &got, &eb), ALM_OK);
    assert_int_equal(got, 0);
    freeReplyObject(reply);
}

/* The group is gone (Redis restarted empty): an error the worker reconnects on. */
static void read_error(void **state)
{
    struct alm_job jobs[ALM_QUEUE_READ_MAX];
    struct alm_errbuf eb = {{0}};
    size_t got = 99;
    (void)state;

    redisReply *reply = parse_text("-NOGROUP No such key 'almanac:queue:ingest' or consumer "
                                   "group 'workers' in XREADGROUP with GROUP option\r\n");
    assert_int_equal(alm_queue_read_reply(reply, jobs, &got, &eb), ALM_ERR_UNAVAILABLE);
    assert_int_equal(got, 0);
    assert_non_null(strstr(eb.msg, "XREADGROUP failed: NOGROUP"));
    freeReplyObject(reply);
}

/* Entries whose job is not ours still come back with their entry id (the worker buries
 * them); parts that are no queue's entry are skipped, and nothing crashes. */
static void read_malformed(void **state)
{
    struct resp r = {.n = 0};
    struct alm_job jobs[ALM_QUEUE_READ_MAX];
    struct alm_errbuf eb = {{0}};
    size_t got = 99;
    (void)state;

    arr(&r, 9);
    raw(&r, ":5\r\n"); /* not a stream at all */
    arr(&r, 1);        /* a stream without its entries */
    bulk(&r, "almanac:queue:ingest");
    arr(&r, 2); /* a stream name that is no string */
    raw(&r, ":1\r\n");
    arr(&r, 1);
    entry(&r, "1-0", "job", ingest_job);
    stream_of_one(&r, "almanac:q", "2-0", ingest_job); /* shorter than the prefix */
    stream_of_one(&r, "other:queue:ingest", "3-0", ingest_job);
    arr(&r, 2); /* an entry list of nil entries (deleted) */
    bulk(&r, "almanac:queue:ingest");
    arr(&r, 1);
    raw(&r, "*-1\r\n");
    arr(&r, 2); /* an entry whose id is no string */
    bulk(&r, "almanac:queue:ingest");
    arr(&r, 1);
    arr(&r, 2);
    raw(&r, ":4\r\n");
    arr(&r, 0);
    /* an entry whose job is not JSON: kept, with its id, for the worker to bury */
    stream_of_one(&r, "almanac:queue:maintenance", "5-0", "{not json");
    arr(&r, 2); /* an entry without a job field, its fields nil: kept too */
    bulk(&r, "almanac:queue:ingest_bulk");
    arr(&r, 1);
    arr(&r, 2);
    bulk(&r, "6-0");
    raw(&r, "*-1\r\n");
    redisReply *reply = parse(&r);
    assert_int_equal(alm_queue_read_reply(reply, jobs, &got, &eb), ALM_OK);
    freeReplyObject(reply);
    assert_int_equal(got, 2);
    assert_string_equal(jobs[0].queue, ALM_QUEUE_MAINTENANCE);
    assert_string_equal(jobs[0].entry, "5-0");
    assert_string_equal(jobs[0].json, "{not json");
    assert_null(jobs[0].doc);
    assert_null(jobs[0].id);
    assert_null(jobs[0].type);
    assert_int_equal(jobs[0].attempt, 1);
    assert_string_equal(jobs[1].queue, ALM_QUEUE_INGEST_BULK);
    assert_string_equal(jobs[1].entry, "6-0");
    assert_null(jobs[1].json);
    assert_null(jobs[1].doc);
    release_all(jobs, got);

    /* not an array at all */
    got = 99;
    reply = parse_text("+OK\r\n");
    assert_int_equal(alm_queue_read_reply(reply, jobs, &got, &eb), ALM_OK);
    assert_int_equal(got, 0);
    freeReplyObject(reply);
}

/* A reply holding more streams than one read may deliver fills the room and no more. */
static void read_caps_at_room(void **state)
{
    struct resp r = {.n = 0};
    struct alm_job jobs[ALM_QUEUE_READ_MAX];
    struct alm_errbuf eb = {{0}};
    size_t got = 99;
    char id[16];
    (void)state;

    arr(&r, ALM_QUEUE_READ_MAX + 2);
    for (int i = 0; i < ALM_QUEUE_READ_MAX + 2; i++) {
        snprintf(id, sizeof(id), "%d-0", i + 1);
        stream_of_one(&r, "almanac:queue:ingest", id, ingest_job);
    }
    redisReply *reply = parse(&r);
    assert_int_equal(alm_queue_read_reply(reply, jobs, &got, &eb), ALM_OK);
    freeReplyObject(reply);
    assert_int_equal(got, ALM_QUEUE_READ_MAX);
    assert_string_equal(jobs[ALM_QUEUE_READ_MAX - 1].entry, "3-0");
    release_all(jobs, got);
}

/* Redis 7's XAUTOCLAIM: [next cursor, [[id, fields]], [deleted ids]]. The queue is the one
 * asked about, not part of the reply. */
static void claim_one(void **state)
{
    struct resp r = {.n = 0};
    struct alm_job job;
    struct alm_errbuf eb = {{0}};
    bool got = false;
    (void)state;

    arr(&r, 3);
    bulk(&r, "0-0");
    arr(&r, 1);
    entry(&r, "1700000000000-0", "job", ingest_job);
    arr(&r, 1);
    bulk(&r, "1699999999999-0");
    redisReply *reply = parse(&r);
    assert_int_equal(alm_queue_claim_reply(reply, ALM_QUEUE_INGEST_BULK, &job, &got, &eb), ALM_OK);
    freeReplyObject(reply);
    assert_true(got);
    assert_string_equal(job.queue, ALM_QUEUE_INGEST_BULK);
    assert_string_equal(job.entry, "1700000000000-0");
    assert_string_equal(job.id, "outbox-9f");
    assert_int_equal(job.attempt, 2);
    assert_int_equal(job.deliveries, 1);
    alm_job_release(&job);
}

/* Nothing idle long enough, an entry deleted while pending (nil), a reply of the wrong
 * shape: no job and no error. An error reply is an error. */
static void claim_none_and_errors(void **state)
{
    static const char *const empty[] = {
        "*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n",
        "*2\r\n$3\r\n0-0\r\n*1\r\n*-1\r\n",
        "*3\r\n$3\r\n0-0\r\n*1\r\n*2\r\n:1\r\n*0\r\n*0\r\n",
        "*1\r\n$3\r\n0-0\r\n",
        "*-1\r\n",
        ":3\r\n",
    };
    struct alm_job job;
    struct alm_errbuf eb = {{0}};
    bool got = true;
    (void)state;

    for (size_t i = 0; i < ALM_ARRAY_SIZE(empty); i++) {
        redisReply *reply = parse_text(empty[i]);
        got = true;
        assert_int_equal(alm_queue_claim_reply(reply, ALM_QUEUE_INGEST, &job, &got, &eb), ALM_OK);
        assert_false(got);
        freeReplyObject(reply);
    }
    redisReply *reply = parse_text("-NOGROUP No such key 'almanac:queue:ingest' or consumer "
                                   "group 'workers'\r\n");
    got = true;
    assert_int_equal(alm_queue_claim_reply(reply, ALM_QUEUE_INGEST, &job, &got, &eb),
                     ALM_ERR_UNAVAILABLE);
    assert_false(got);
    assert_non_null(strstr(eb.msg, "XAUTOCLAIM failed: NOGROUP"));
    freeReplyObject(reply);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(read_two_streams),
        cmocka_unit_test(read_nil),
        cmocka_unit_test(read_error),
        cmocka_unit_test(read_malformed),
        cmocka_unit_test(read_caps_at_room),
        cmocka_unit_test(claim_one),
        cmocka_unit_test(claim_none_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
