/* SPDX-License-Identifier: Apache-2.0 */
/* compat.h: the first include of every .c file: feature macros and attributes. */
#pragma once

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setname_np, accept4, getrandom */
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
/* What banned.h bans is declared here, before its macros (see banned.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALM_MUSTCHECK     __attribute__((warn_unused_result))
#define ALM_PRINTF(f, a)  __attribute__((format(printf, f, a)))
#define ALM_NORETURN      __attribute__((noreturn))
#define ALM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Exit codes, one meaning each (sysexits.h). */
enum alm_exit {
    ALM_EXIT_OK = 0,
    ALM_EXIT_FAILURE = 1, /* a run-time failure */
    ALM_EXIT_USAGE = 64,  /* EX_USAGE: bad command line */
    ALM_EXIT_CONFIG = 78, /* EX_CONFIG: bad or missing settings */
};

#include "banned.h"
