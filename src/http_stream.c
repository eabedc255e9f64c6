/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "http_stream.h"
#include "mem.h"

#include <errno.h>
#include <microhttpd.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Unsent bytes beyond this mean a client that stopped reading: the stream is dropped. */
#define PENDING_CAP (8 * 1024 * 1024)

struct alm_stream {
    pthread_mutex_t mu;
    struct MHD_Connection *conn;
    struct alm_buf pending;
    size_t sent; /* bytes of pending already handed to libmicrohttpd */
    int refs;
    bool ended;     /* the producer is done */
    bool gone;      /* the response was freed: client gone or body sent */
    bool suspended; /* the reader suspended the connection; the next write resumes it */
};

static void unref_locked(struct alm_stream *s)
{
    bool last = --s->refs == 0;

    pthread_mutex_unlock(&s->mu);
    if (!last)
        return;
    pthread_mutex_destroy(&s->mu);
    alm_buf_release(&s->pending);
    free(s);
}

/* Only resumed when the reader suspended, and under the lock the reader holds while
 * suspending: never a resume of a connection that is not suspended, never a lost one. */
static void wake_locked(struct alm_stream *s)
{
    if (s->suspended && !s->gone) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct alm_stream *s = cls;
    ssize_t n;

    (void)pos;
    pthread_mutex_lock(&s->mu);
    if (s->sent < s->pending.len) {
        size_t left = s->pending.len - s->sent;
        n = (ssize_t)(left < max ? left : max);
        memcpy(buf, s->pending.data + s->sent, (size_t)n);
        s->sent += (size_t)n;
        if (s->sent == s->pending.len) {
            s->pending.len = 0; /* keep the storage, start over */
            s->sent = 0;
        }
    } else if (s->ended) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        s->suspended = true;
        MHD_suspend_connection(s->conn);
        n = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void reader_free(void *cls)
{
    struct alm_stream *s = cls;

    pthread_mutex_lock(&s->mu);
    s->gone = true;
    unref_locked(s);
}

struct alm_stream *alm_reply_stream(struct alm_req *req, int status, const char *content_type)
{
    struct alm_stream *s = alm_xcalloc(1, sizeof(*s));
    struct MHD_Response *resp;

    pthread_mutex_init(&s->mu, NULL);
    s->conn = alm_req_connection(req);
    s->pending = (struct alm_buf)ALM_BUF_INIT(PENDING_CAP);
    s->refs = 2;
    /* 4 KiB reads: an event goes out as soon as it is written, not once a block fills. */
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, reader, s, reader_free);
    if (!resp) {
        s->gone = true;
        s->refs = 1;
        return s;
    }
    alm_reply_header(req, "X-Accel-Buffering", "no"); /* nginx: pass it on as it comes */
    alm_reply_response(req, status, content_type, resp);
    MHD_destroy_response(resp);
    return s;
}

bool alm_stream_write(struct alm_stream *s, const char *data, size_t n)
{
    bool ok;

    pthread_mutex_lock(&s->mu);
    ok = !s->gone && alm_buf_append(&s->pending, data, n) == ALM_OK;
    if (ok)
        wake_locked(s);
    pthread_mutex_unlock(&s->mu);
    return ok;
}

bool alm_stream_alive(struct alm_stream *s)
{
    bool alive;

    pthread_mutex_lock(&s->mu);
    alive = !s->gone;
    pthread_mutex_unlock(&s->mu);
    return alive;
}

void alm_stream_end(struct alm_stream *s)
{
    pthread_mutex_lock(&s->mu);
    s->ended = true;
    wake_locked(s);
    unref_locked(s);
}

bool alm_req_peer_closed(struct alm_req *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(alm_req_connection(req), MHD_CONNECTION_INFO_CONNECTION_FD);
    char c;

    if (!ci)
        return false;
    ssize_t n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}
