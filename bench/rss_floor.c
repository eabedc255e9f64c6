/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The memory baseline for bench/http.sh: the smallest program that loads the shared
 * libraries `almanac` links against and does what any user of them does before serving.
 *
 *   rss_floor load             only loads the libraries (the dynamic loader's share)
 *   rss_floor init DB_URL HOST PORT
 *                              also initialises libcurl (and with it the TLS library),
 *                              opens one PostgreSQL connection (SELECT 1) and one Redis
 *                              connection (PING), as the api's readiness checks do
 *
 * Prints "ready" once done and then waits until its standard input closes, so that the
 * bench can read its resident memory next to the api's, in the same run. The bench links
 * it against exactly the libraries `readelf -d almanac` lists, in the same order.
 */
#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int init_clients(const char *db_url, const char *redis_host, int redis_port)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return fprintf(stderr, "rss_floor: curl_global_init failed\n"), 1;

    PGconn *pg = PQconnectdb(db_url);
    PGresult *res = PQstatus(pg) == CONNECTION_OK ? PQexec(pg, "SELECT 1") : NULL;
    int pg_ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    if (!pg_ok)
        return fprintf(stderr, "rss_floor: PostgreSQL: %s", PQerrorMessage(pg)), 1;

    redisContext *redis = redisConnect(redis_host, redis_port);
    redisReply *pong = redis && !redis->err ? redisCommand(redis, "PING") : NULL;
    if (!pong)
        return fprintf(stderr, "rss_floor: Redis unreachable\n"), 1;
    freeReplyObject(pong);
    /* The connections stay open while the bench measures, as the api's do. */
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "init") == 0) {
        if (init_clients(argv[2], argv[3], atoi(argv[4])) != 0)
            return 1;
    } else if (argc != 2 || strcmp(argv[1], "load") != 0) {
        fprintf(stderr, "usage: rss_floor load | rss_floor init DB_URL REDIS_HOST REDIS_PORT\n");
        return 64;
    }
    printf("ready\n");
    fflush(stdout);
    while (getchar() != EOF)
        ;
    return 0;
}
