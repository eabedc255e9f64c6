/* SPDX-License-Identifier: Apache-2.0 */
/* sandbox.h: running an extractor on one untrusted document in a child process.
 *
 * The child gets the document on stdin (a sealed memfd, so tools can seek in it), an
 * empty environment, no descriptor but 0, 1 and 2, its own process group, limits on
 * address space, CPU time, file size and open files, and, where the kernel lets an
 * unprivileged process make namespaces, no network (a new, empty network namespace).
 * The parent reads stdout up to a cap and the last bytes of stderr, and kills the
 * whole process group (SIGKILL) at the wall-clock deadline or when stdout passes its
 * cap. Whatever the child does, the caller gets a result or a clear error, and the
 * worker's own memory grows by at most the stdout cap. */
#pragma once
#include "compat.h"
#include "err.h"
#include "mem.h"

struct alm_sandbox_limits {
    size_t as_bytes;    /* RLIMIT_AS; 0 = none */
    int cpu_s;          /* RLIMIT_CPU */
    size_t fsize_bytes; /* RLIMIT_FSIZE: the largest file the child may write */
    int nofile;         /* RLIMIT_NOFILE */
    int wall_ms;        /* killed after this */
    size_t max_out;     /* stdout cap */
};

struct alm_sandbox_result {
    struct alm_buf out; /* stdout */
    char err[400];      /* the last line(s) of stderr, scrubbed to UTF-8 */
    int exit_code;      /* when exited */
    int signal;         /* when killed by a signal (SIGKILL on deadline or cap too) */
    bool timed_out;
    bool out_capped;
};

/* Runs argv (argv[0] an absolute path) with in[0..inlen) on stdin. ALM_OK when the child
 * ran (whatever its exit status: see r); ALM_ERR_INTERNAL when it could not be started.
 * r is released with alm_sandbox_result_release() in every case. */
enum alm_err alm_sandbox_run(const char *const *argv, const void *in, size_t inlen,
                             const struct alm_sandbox_limits *lim, struct alm_sandbox_result *r,
                             struct alm_errbuf *eb) ALM_MUSTCHECK;
/* The same with stdin the file open at fd (a memfd from alm_sandbox_memfd(), read from
 * its start: children run one after another may share it). fd stays the caller's. */
enum alm_err alm_sandbox_run_fd(const char *const *argv, int fd,
                                const struct alm_sandbox_limits *lim, struct alm_sandbox_result *r,
                                struct alm_errbuf *eb) ALM_MUSTCHECK;
/* A new in-memory file (close-on-exec) to fill with write() and hand to run_fd; -1 on
 * failure. The document then never sits in the worker's heap. */
int alm_sandbox_memfd(void);
/* Seals a filled memfd against any change, so no child can alter what the next reads. */
void alm_sandbox_seal(int fd);
void alm_sandbox_result_release(struct alm_sandbox_result *r);
/* What confines children on this host, probed once with a real child: "network
 * namespace" or "none (unprivileged namespaces refused)". Logged at worker start. */
const char *alm_sandbox_network(void);
