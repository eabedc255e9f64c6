/* SPDX-License-Identifier: Apache-2.0 */
/* log.h: structured logs, one JSON object per line on stdout.
 *
 * Each line has fixed keys first (ts, level, svc, event, msg), then the fields given in
 * jansson's json_pack() format. msg is a constant sentence; variable data goes in
 * fields. A line is built in memory and written with one write(2), so threads never
 * interleave. Never pass a secret as a field: use alm_url_redact() for URLs. */
#pragma once
#include "compat.h"

enum alm_log_level { ALM_LOG_DEBUG, ALM_LOG_INFO, ALM_LOG_WARN, ALM_LOG_ERROR, ALM_LOG_FATAL };

/* Borrowed: svc must be a string literal or outlive the process; NULL keeps the current. */
void alm_log_init(const char *svc, enum alm_log_level min_level);
bool alm_log_enabled(enum alm_log_level level);
/* fields may be NULL; otherwise a json_pack() format for an object, e.g. "{s:s, s:i}". */
void alm_log(enum alm_log_level level, const char *event, const char *msg, const char *fields, ...);
/* Parses "debug|info|warn|error"; returns false on anything else. */
bool alm_log_level_parse(const char *s, enum alm_log_level *out);

#define alm_debug(event, msg, ...) alm_log(ALM_LOG_DEBUG, event, msg, __VA_ARGS__)
#define alm_info(event, msg, ...)  alm_log(ALM_LOG_INFO, event, msg, __VA_ARGS__)
#define alm_warn(event, msg, ...)  alm_log(ALM_LOG_WARN, event, msg, __VA_ARGS__)
#define alm_error(event, msg, ...) alm_log(ALM_LOG_ERROR, event, msg, __VA_ARGS__)
