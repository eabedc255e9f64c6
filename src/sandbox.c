/* SPDX-License-Identifier: Apache-2.0 */
/* The per-document sandbox: fork, confine, exec; the parent polls the child's stdout and
 * stderr under the deadline. Between fork and exec the child only makes system calls
 * (the worker is multi-threaded: anything that might take a lock held by another
 * thread at fork time could deadlock). */
#define _GNU_SOURCE
#include "compat.h"
#include "sandbox.h"
#include "clock.h"
#include "text.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define ALM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ALM_ASAN 1
#endif
#endif

/* The child's whole environment: nothing of the worker's (its secrets live there).
 * One thread for Tesseract's OpenMP, so that one document uses one core. */
static char env_omp[] = "OMP_THREAD_LIMIT=1", env_lc[] = "LC_ALL=C.UTF-8";
static char *const child_env[] = {env_omp, env_lc, NULL};

static bool unshare_net(void)
{
    /* A user namespace first, so that an unprivileged worker may make the network one. */
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0)
        return true;
    return unshare(CLONE_NEWNET) == 0;
}

static void set_limit(int res, rlim_t v)
{
    struct rlimit rl = {v, v};
    if (setrlimit(res, &rl) != 0)
        _exit(126);
}

/* In the child, after fork: system calls only. */
static _Noreturn void child(const char *const *argv, int in, int out, int err,
                            const struct alm_sandbox_limits *lim, char *const *env, bool cap_as)
{
    sigset_t none;

    setpgid(0, 0);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        _exit(126);
    close_range(3, ~0U, 0);
    (void)unshare_net(); /* where refused, alm_sandbox_network() says so once */
    if (lim->as_bytes && cap_as)
        set_limit(RLIMIT_AS, lim->as_bytes);
    set_limit(RLIMIT_CPU, (rlim_t)lim->cpu_s);
    set_limit(RLIMIT_FSIZE, lim->fsize_bytes);
    set_limit(RLIMIT_NOFILE, (rlim_t)lim->nofile);
    set_limit(RLIMIT_CORE, 0);
    /* execve's argv is not const for history's sake; it does not write to it */
    union {
        const char *const *c;
        char *const *m;
    } args = {argv};
    execve(argv[0], args.m, env);
    _exit(127);
}

int alm_sandbox_memfd(void)
{
    return memfd_create("almanac-doc", MFD_CLOEXEC | MFD_ALLOW_SEALING);
}

void alm_sandbox_seal(int fd)
{
    (void)fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
}

/* A sealed in-memory file holding the input. */
static int input_fd(const void *in, size_t len)
{
    int fd = alm_sandbox_memfd();
    size_t done = 0;

    if (fd < 0)
        return -1;
    while (done < len) {
        ssize_t w = write(fd, (const char *)in + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    alm_sandbox_seal(fd);
    return fd;
}

/* Keeps the last bytes of stderr: the tools' final lines say what went wrong. */
static void keep_tail(char *tail, size_t *tlen, size_t cap, const char *p, size_t n)
{
    if (n >= cap) {
        memcpy(tail, p + n - cap, cap);
        *tlen = cap;
        return;
    }
    if (*tlen + n > cap) {
        size_t drop = *tlen + n - cap;
        memmove(tail, tail + drop, *tlen - drop);
        *tlen -= drop;
    }
    memcpy(tail + *tlen, p, n);
    *tlen += n;
}

static void finish_err(struct alm_sandbox_result *r, char *tail, size_t tlen)
{
    while (tlen > 0 && (tail[tlen - 1] == '\n' || tail[tlen - 1] == ' '))
        tlen--;
    tail[tlen] = '\0';
    for (size_t i = 0; i < tlen; i++) {
        if ((unsigned char)tail[i] < 0x20)
            tail[i] = ' '; /* one line for the document's error */
    }
    alm_text_scrub_utf8(tail);
    snprintf(r->err, sizeof(r->err), "%s", tail);
}

/* Reads both pipes until they close, the deadline passes or stdout passes its cap. */
static void pump(int out, int err, int64_t deadline, struct alm_sandbox_result *r,
                 const struct alm_sandbox_limits *lim)
{
    struct pollfd p[2] = {{.fd = out, .events = POLLIN}, {.fd = err, .events = POLLIN}};
    char buf[65536], tail[sizeof(r->err)];
    size_t tlen = 0;

    while (p[0].fd >= 0 || p[1].fd >= 0) {
        int64_t left = deadline - alm_clock_ms();
        if (left <= 0) {
            r->timed_out = true;
            break;
        }
        if (poll(p, 2, (int)left) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2; i++) {
            ssize_t n;
            if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            n = read(p[i].fd, buf, sizeof(buf));
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0) {
                p[i].fd = -1;
                continue;
            }
            if (i == 1) {
                keep_tail(tail, &tlen, sizeof(tail) - 1, buf, (size_t)n);
            } else if (r->out.len + (size_t)n > lim->max_out ||
                       alm_buf_append(&r->out, buf, (size_t)n)) {
                r->out_capped = true;
                finish_err(r, tail, tlen);
                return;
            }
        }
    }
    finish_err(r, tail, tlen);
}

/* Waits for the child until the deadline, then kills its group; a group left behind by
 * a child that exited (a forked grandchild) is killed too. */
static void reap(pid_t pid, int64_t deadline, bool kill_now, struct alm_sandbox_result *r)
{
    int status = 0;
    pid_t w;

    if (kill_now)
        kill(-pid, SIGKILL);
    for (;;) {
        w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR))
            break;
        if (alm_clock_ms() >= deadline) {
            r->timed_out = true;
            kill(-pid, SIGKILL);
            w = waitpid(pid, &status, 0);
            break;
        }
        alm_clock_sleep_ms(2);
    }
    kill(-pid, SIGKILL);
    if (w == pid && WIFEXITED(status))
        r->exit_code = WEXITSTATUS(status);
    else if (w == pid && WIFSIGNALED(status))
        r->signal = WTERMSIG(status);
}

#ifdef ALM_ASAN
/* A sanitized almanac child needs the test run's sanitizer options (no secrets there). */
static char *asan_env[8];
static char asan_vals[3][1024];

static void init_asan_env(void)
{
    static const char *const keep[] = {"ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS"};
    size_t n = 0;

    for (size_t i = 0; child_env[i]; i++)
        asan_env[n++] = child_env[i];
    for (size_t i = 0; i < ALM_ARRAY_SIZE(keep); i++) {
        const char *v = getenv(keep[i]);
        if (v && strlen(v) + strlen(keep[i]) + 2 < sizeof(asan_vals[i])) {
            snprintf(asan_vals[i], sizeof(asan_vals[i]), "%s=%s", keep[i], v);
            asan_env[n++] = asan_vals[i];
        }
    }
    asan_env[n] = NULL;
}
#endif

/* Whether path is this (sanitized) almanac binary, whose sanitizer runtime reserves
 * terabytes of address space: only unsanitized builds, the ones that ship, can cap it. */
static bool sanitized_self(const char *path)
{
#ifdef ALM_ASAN
    return strstr(path, "almanac") != NULL || strcmp(path, "/proc/self/exe") == 0;
#else
    (void)path;
    return false;
#endif
}

static char *const *child_environment(const char *path)
{
#ifdef ALM_ASAN
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (sanitized_self(path)) {
        pthread_once(&once, init_asan_env);
        return asan_env;
    }
#else
    (void)path;
#endif
    return child_env;
}

enum alm_err alm_sandbox_run(const char *const *argv, const void *in, size_t inlen,
                             const struct alm_sandbox_limits *lim, struct alm_sandbox_result *r,
                             struct alm_errbuf *eb)
{
    int fd = input_fd(in, inlen);
    enum alm_err err;

    if (fd < 0) {
        memset(r, 0, sizeof(*r));
        return alm_fail(eb, ALM_ERR_INTERNAL, "cannot hold the document for the extractor");
    }
    err = alm_sandbox_run_fd(argv, fd, lim, r, eb);
    close(fd);
    return err;
}

enum alm_err alm_sandbox_run_fd(const char *const *argv, int fd,
                                const struct alm_sandbox_limits *lim, struct alm_sandbox_result *r,
                                struct alm_errbuf *eb)
{
    int64_t deadline = alm_clock_ms() + lim->wall_ms;
    char *const *env = child_environment(argv[0]);
    int po[2], pe[2];
    pid_t pid;

    memset(r, 0, sizeof(*r));
    r->out = (struct alm_buf)ALM_BUF_INIT(lim->max_out);
    r->exit_code = -1;
    if (lseek(fd, 0, SEEK_SET) != 0)
        return alm_fail(eb, ALM_ERR_INTERNAL, "cannot rewind the document for the extractor");
    if (pipe2(po, O_CLOEXEC) != 0)
        return alm_fail(eb, ALM_ERR_INTERNAL, "cannot start the extractor: no pipe");
    if (pipe2(pe, O_CLOEXEC) != 0) {
        close(po[0]);
        close(po[1]);
        return alm_fail(eb, ALM_ERR_INTERNAL, "cannot start the extractor: no pipe");
    }
    pid = fork();
    if (pid == 0)
        child(argv, fd, po[1], pe[1], lim, env, !sanitized_self(argv[0]));
    close(po[1]);
    close(pe[1]);
    if (pid < 0) {
        close(po[0]);
        close(pe[0]);
        return alm_fail(eb, ALM_ERR_INTERNAL, "cannot start the extractor: fork failed");
    }
    setpgid(pid, pid); /* also here, so that a kill right away reaches the group */
    pump(po[0], pe[0], deadline, r, lim);
    if (r->timed_out || r->out_capped)
        kill(-pid, SIGKILL); /* before the pipes close: the child dies of this, not SIGPIPE */
    close(po[0]);
    close(pe[0]);
    reap(pid, deadline, r->timed_out || r->out_capped, r);
    return ALM_OK;
}

void alm_sandbox_result_release(struct alm_sandbox_result *r)
{
    alm_buf_release(&r->out);
}

static const char *network;

static void probe(void)
{
    pid_t pid = fork();
    int status = 0;

    if (pid == 0)
        _exit(unshare_net() ? 0 : 1);
    if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        network = "network namespace (no interfaces)";
    else
        network = "none: this host refuses unprivileged namespaces; rlimits, empty environment and "
                  "closed descriptors still apply";
}

const char *alm_sandbox_network(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, probe);
    return network;
}
