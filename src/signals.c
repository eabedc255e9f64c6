/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "signals.h"
#include "clock.h"
#include "log.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static atomic_bool stopping;
static sigset_t handled;

void alm_signals_block(void)
{
    sigemptyset(&handled);
    sigaddset(&handled, SIGTERM);
    sigaddset(&handled, SIGINT);
    sigaddset(&handled, SIGHUP);
    sigaddset(&handled, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &handled, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void alm_signals_unblock(void)
{
    pthread_sigmask(SIG_UNBLOCK, &handled, NULL);
}

void alm_signals_request_stop(const char *why)
{
    pthread_mutex_lock(&mu);
    if (!atomic_exchange(&stopping, true))
        alm_info("shutdown.requested", "stop requested, draining", "{s:s}", "reason", why);
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
}

static void *signal_thread(void *arg)
{
    (void)arg;
    for (;;) {
        int sig = 0;
        if (sigwait(&handled, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            alm_info("signal.hup", "SIGHUP ignored; restart to apply new settings", NULL);
            continue;
        }
        if (sig == SIGQUIT || atomic_load(&stopping)) {
            alm_warn("shutdown.fast", "second stop signal, exiting now", "{s:s}", "signal",
                     sigdescr_np(sig));
            _exit(ALM_EXIT_FAILURE);
        }
        alm_signals_request_stop(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    }
    return NULL;
}

void alm_signals_start(void)
{
    pthread_t t;

    if (pthread_create(&t, NULL, signal_thread, NULL) == 0) {
        pthread_setname_np(t, "alm-signals");
        pthread_detach(t);
    }
}

bool alm_signals_wait(int64_t timeout_ms)
{
    int64_t until = alm_clock_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    bool r;

    pthread_mutex_lock(&mu);
    while (!atomic_load(&stopping)) {
        if (timeout_ms < 0)
            pthread_cond_wait(&cond, &mu);
        else if (!alm_clock_wait_until(&cond, &mu, until))
            break;
    }
    r = atomic_load(&stopping);
    pthread_mutex_unlock(&mu);
    return r;
}
