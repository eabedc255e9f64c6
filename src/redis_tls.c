/* SPDX-License-Identifier: Apache-2.0 */
/* redis_tls.c: TLS to Redis (rediss://) for a hiredis without TLS.
 *
 * Debian bookworm's hiredis is 0.14, from before hiredis_ssl (1.0). So the TLS session
 * lives here, with OpenSSL: the caller's thread connects, handshakes and verifies the
 * server's certificate (chain to the CA file, or the system's CAs, and the host name),
 * so a certificate that does not verify is reported at once, as the connect error.
 * Then one relay thread per connection copies bytes between the TLS session and one end
 * of a socketpair; hiredis gets the other end (redisConnectFd) and speaks plain RESP
 * on it as on any socket, timeouts included. The relay ends when either side closes.
 *
 * Redis is request-reply here (no pub/sub): a reply only flows after its request was
 * read, so the relay's blocking writes cannot deadlock with hiredis's. */
#include "compat.h"
#include "redis_tls.h"
#include "clock.h"
#include "log.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct relay {
    SSL *ssl;
    int tcp, local;
};

/* Relays still running. At exit the process waits a moment for those whose connection
 * was just closed, so that none is torn down half-way (the leak checker would see its
 * session as lost). */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t live_cv = PTHREAD_COND_INITIALIZER;
static int live;
static pthread_once_t at_exit_once = PTHREAD_ONCE_INIT;

static void wait_relays(void)
{
    int64_t until = alm_clock_ms() + 2000;

    pthread_mutex_lock(&live_mu);
    while (live > 0 && alm_clock_wait_until(&live_cv, &live_mu, until))
        ;
    pthread_mutex_unlock(&live_mu);
}

static void register_at_exit(void)
{
    atexit(wait_relays);
}

static void relay_done(void)
{
    pthread_mutex_lock(&live_mu);
    live--;
    pthread_cond_broadcast(&live_cv);
    pthread_mutex_unlock(&live_mu);
}

static void relay_free(struct relay *r)
{
    SSL_free(r->ssl);
    close(r->tcp);
    close(r->local);
    free(r);
}

/* Writes all of buf to the TLS session or the local socket; false on error or close. */
static bool write_all(struct relay *r, bool to_tls, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w;
        if (to_tls) {
            int k = SSL_write(r->ssl, buf, (int)n);
            w = k > 0 ? k : -1;
        } else {
            w = write(r->local, buf, n);
            if (w < 0 && errno == EINTR)
                continue;
        }
        if (w <= 0)
            return false;
        buf += w;
        n -= (size_t)w;
    }
    return true;
}

static void *relay_main(void *arg)
{
    struct relay *r = arg;
    char buf[16384];

    for (;;) {
        struct pollfd p[2] = {{.fd = r->local, .events = POLLIN}, {.fd = r->tcp, .events = POLLIN}};
        if (SSL_pending(r->ssl) == 0 && poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (SSL_pending(r->ssl) > 0 || (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            int k = SSL_read(r->ssl, buf, sizeof(buf));
            if (k <= 0) {
                int e = SSL_get_error(r->ssl, k);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    continue;
                break; /* the server closed, or the session failed */
            }
            if (!write_all(r, false, buf, (size_t)k))
                break;
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(r->local, buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break; /* hiredis closed its end */
            if (!write_all(r, true, buf, (size_t)n))
                break;
        }
    }
    SSL_shutdown(r->ssl);
    relay_free(r);
    OPENSSL_thread_stop(); /* its thread-local state now, not in a destructor after exit */
    relay_done();
    return NULL;
}

/* A TCP connection to host:port within timeout_ms, blocking afterwards; -1 with eb. */
static int tcp_connect(const char *host, int port, int timeout_ms, struct alm_errbuf *eb)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    struct timeval tv = alm_clock_timeval(timeout_ms);
    char ports[8];
    int fd = -1, rc;

    snprintf(ports, sizeof(ports), "%d", port);
    rc = getaddrinfo(host, ports, &hints, &res);
    if (rc != 0) {
        alm_fail(eb, ALM_ERR_UNAVAILABLE, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        /* Send and receive timeouts bound the connect and the handshake too. */
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        alm_fail(eb, ALM_ERR_UNAVAILABLE, "%s",
                 errno == ECONNREFUSED ? "connection refused" : alm_strerror(errno));
    return fd;
}

static SSL_CTX *make_ctx(const char *ca_file, struct alm_errbuf *eb)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (!ctx) {
        alm_fail(eb, ALM_ERR_UNAVAILABLE, "TLS: cannot create a context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* The relay calls SSL_read only when poll() saw bytes: a record that holds no data
     * (a TLS 1.3 session ticket) must return WANT_READ then, not block for the next. */
    SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1
                : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        alm_fail(eb, ALM_ERR_INVALID, "TLS: cannot read the CA file %s", ca_file ? ca_file : "");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int alm_redis_tls_open(const char *host, int port, const char *ca_file, int timeout_ms,
                       struct alm_errbuf *eb)
{
    SSL_CTX *ctx = make_ctx(ca_file, eb);
    struct relay *r = NULL;
    int pair[2] = {-1, -1}, tcp = -1;
    SSL *ssl = NULL;
    pthread_t t;

    if (!ctx)
        return -1;
    tcp = tcp_connect(host, port, timeout_ms, eb);
    if (tcp < 0)
        goto fail;
    ssl = SSL_new(ctx);
    /* SSL_ctrl, not the SSL_set_tlsext_host_name() macro: that casts away const, which
     * clang's -Wcast-qual (the fuzz build) refuses. */
    if (!ssl || SSL_set_fd(ssl, tcp) != 1 ||
        SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 (void *)(uintptr_t)host) != 1 || /* NOLINT(performance-no-int-to-ptr): see above */
        SSL_set1_host(ssl, host) != 1) {
        alm_fail(eb, ALM_ERR_UNAVAILABLE, "TLS: cannot set up the session");
        goto fail;
    }
    ERR_clear_error();
    if (SSL_connect(ssl) != 1) {
        long v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK)
            alm_fail(eb, ALM_ERR_UNAVAILABLE, "TLS: certificate verify failed: %s",
                     X509_verify_cert_error_string(v));
        else
            alm_fail(eb, ALM_ERR_UNAVAILABLE, "TLS handshake failed: %s",
                     ERR_peek_last_error() ? ERR_reason_error_string(ERR_peek_last_error())
                                           : "connection closed or timed out");
        goto fail;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        alm_fail(eb, ALM_ERR_UNAVAILABLE, "socketpair: %s", alm_strerror(errno));
        goto fail;
    }
    /* The relay blocks in its own poll; no timeout on the TLS socket from here on. */
    struct timeval none = {0, 0};
    setsockopt(tcp, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
    r = malloc(sizeof(*r));
    if (!r) {
        alm_fail(eb, ALM_ERR_UNAVAILABLE, "out of memory");
        goto fail;
    }
    *r = (struct relay){.ssl = ssl, .tcp = tcp, .local = pair[1]};
    pthread_once(&at_exit_once, register_at_exit);
    pthread_mutex_lock(&live_mu);
    live++;
    pthread_mutex_unlock(&live_mu);
    if (pthread_create(&t, NULL, relay_main, r) != 0) {
        alm_fail(eb, ALM_ERR_UNAVAILABLE, "cannot start the TLS relay");
        free(r);
        relay_done();
        goto fail;
    }
    pthread_setname_np(t, "alm-redis-tls");
    pthread_detach(t);
    SSL_CTX_free(ctx); /* the session keeps its own reference */
    return pair[0];
fail:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (tcp >= 0)
        close(tcp);
    if (pair[0] >= 0) {
        close(pair[0]);
        close(pair[1]);
    }
    return -1;
}
