/* SPDX-License-Identifier: Apache-2.0 */
/* signals.h: signals handled in normal context by one sigwait() thread.
 *
 * main() blocks SIGTERM, SIGINT, SIGHUP and SIGQUIT before any thread exists (threads
 * inherit the mask) and ignores SIGPIPE. A command that runs until told to stop calls
 * alm_signals_start(); the first SIGTERM or SIGINT then sets the stop flag and wakes
 * alm_signals_wait(); a second one, or SIGQUIT, exits at once with status 1. This also
 * works as PID 1, where default actions are dropped. */
#pragma once
#include "compat.h"

void alm_signals_block(void);
/* For one-shot commands: default actions again, so a signal simply ends the process. */
void alm_signals_unblock(void);
void alm_signals_start(void);
/* Waits until a stop signal arrived or timeout_ms passed (<0: forever); true if stopping. */
bool alm_signals_wait(int64_t timeout_ms);
/* Asks the process to stop as a first SIGTERM would; for tests and fatal paths. */
void alm_signals_request_stop(const char *why);
