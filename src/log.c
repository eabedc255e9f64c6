/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "log.h"
#include "clock.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *log_svc = "almanac";
static enum alm_log_level log_min = ALM_LOG_INFO;
static const char *level_names[] = {"debug", "info", "warn", "error", "fatal"};

void alm_log_init(const char *svc, enum alm_log_level min_level)
{
    if (svc)
        log_svc = svc;
    log_min = min_level;
}

bool alm_log_enabled(enum alm_log_level level)
{
    return level >= log_min;
}

bool alm_log_level_parse(const char *s, enum alm_log_level *out)
{
    for (size_t i = 0; i < ALM_LOG_FATAL; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum alm_log_level)i;
            return true;
        }
    }
    return false;
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDOUT_FILENO, p, n);
        if (w <= 0)
            return; /* stdout gone: nowhere left to say so */
        p += w;
        n -= (size_t)w;
    }
}

void alm_log(enum alm_log_level level, const char *event, const char *msg, const char *fields, ...)
{
    char ts[32];
    json_t *line, *extra = NULL;
    char *text;

    if (!alm_log_enabled(level))
        return;
    alm_clock_now_iso8601(ts, sizeof(ts));
    line = json_pack("{s:s, s:s, s:s, s:s, s:s}", "ts", ts, "level", level_names[level], "svc",
                     log_svc, "event", event, "msg", msg);
    if (!line)
        return;
    if (fields) {
        json_error_t jerr;
        va_list ap;
        va_start(ap, fields);
        extra = json_vpack_ex(&jerr, 0, fields, ap);
        va_end(ap);
        if (json_is_object(extra))
            json_object_update_missing(line, extra);
        else
            json_object_set_new(line, "log_error", json_string("bad log fields"));
        json_decref(extra);
    }
    text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(line);
    if (!text)
        return;
    size_t n = strlen(text);
    text[n] = '\n'; /* replaces the NUL: one write for the whole line */
    write_all(text, n + 1);
    free(text);
}
