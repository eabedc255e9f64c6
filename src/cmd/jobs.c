/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "cmd.h"
#include "queue.h"
#include "redis.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: almanac jobs retry-dead | stats\n"
    "\n"
    "retry-dead  puts every dead letter back on its queue as a first attempt (after fixing\n"
    "            what made the jobs fail); prints how many\n"
    "stats       prints each queue's length, pending, delayed and dead-letter counts\n";

static int stats(redisContext *c)
{
    struct alm_errbuf eb = {{0}};
    struct alm_queue_stats s;

    printf("%-12s %8s %8s %9s %8s %8s %14s\n", "QUEUE", "LENGTH", "PENDING", "CONSUMERS", "DELAYED",
           "DEAD", "OLDEST_PENDING");
    for (size_t i = 0; i < alm_queue_count; i++) {
        if (alm_queue_stats(c, alm_queue_names[i], &s, &eb)) {
            fprintf(stderr, "almanac: jobs: %s\n", eb.msg);
            return ALM_EXIT_FAILURE;
        }
        printf("%-12s %8lld %8lld %9lld %8lld %8lld %13.1fs\n", alm_queue_names[i], s.length,
               s.pending, s.consumers, s.delayed, s.dead, s.oldest_pending_age_s);
    }
    return ALM_EXIT_OK;
}

static int parse(int argc, char **argv, void *args)
{
    (void)args;
    if (argc != 2 || (strcmp(argv[1], "retry-dead") != 0 && strcmp(argv[1], "stats") != 0))
        return alm_cmd_usage_error("jobs", "expected 'retry-dead' or 'stats'");
    return ALM_EXIT_OK;
}

int alm_cmd_jobs(int argc, char **argv)
{
    struct alm_config cfg = {0};
    struct alm_errbuf eb = {{0}};
    redisContext *c;
    long n = 0;
    struct alm_cmd_start start = {
        .name = "jobs", .usage = usage, .parse = parse, .cfg = &cfg, .log_level = ALM_LOG_WARN};
    int rc;

    if (!alm_cmd_start(&start, argc, argv, &rc))
        return rc;
    c = alm_redis_connect(&cfg, 5000, &eb);
    if (!c) {
        fprintf(stderr, "almanac: jobs: cannot reach redis: %s\n", eb.msg);
        alm_config_release(&cfg);
        return ALM_EXIT_FAILURE;
    }
    if (strcmp(argv[1], "stats") == 0) {
        rc = stats(c);
    } else if (alm_queue_replay_dead(c, &n, &eb)) {
        fprintf(stderr, "almanac: jobs: %s\n", eb.msg);
        rc = ALM_EXIT_FAILURE;
    } else {
        printf("%ld dead letter%s queued again\n", n, n == 1 ? "" : "s");
    }
    redisFree(c);
    alm_config_release(&cfg);
    return rc;
}
