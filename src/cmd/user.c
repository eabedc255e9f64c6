/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "cmd.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "schema.h"
#include "signals.h"
#include "users.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: almanac user create [--admin] --email EMAIL [--password-file FILE]\n"
    "\n"
    "Creates a user; with --admin an administrator (the way to create the first one).\n"
    "The password is read from FILE, or else from standard input (first line), never\n"
    "from the command line, where other users of the host could read it. Exits 0 on\n"
    "success, 1 when the database refuses (e.g. the email exists), 65 on an invalid\n"
    "email or password, 64 on bad usage, 78 on bad configuration.\n";

#define EXIT_DATAERR 65

/* Reads the first line of f into a new string (NULL when nothing could be read). */
static char *read_password(FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);

    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

static char *password_from(const char *file)
{
    FILE *f = file ? fopen(file, "r") : stdin;
    char *pw;

    if (!f)
        return NULL;
    pw = read_password(f);
    if (file)
        fclose(f);
    return pw;
}

static int create(const char *email, bool admin, const char *file)
{
    struct alm_config cfg;
    struct alm_errbuf eb = {{0}};
    struct alm_user user;
    PGconn *conn = NULL;
    char *pw;
    int rc;

    pw = password_from(file);
    if (!pw) {
        fprintf(stderr, "almanac: user: cannot read the password from %s\n",
                file ? file : "standard input");
        return ALM_EXIT_USAGE;
    }
    if (alm_users_validate(email, pw, &eb)) {
        fprintf(stderr, "almanac: user: %s\n", eb.msg);
        rc = EXIT_DATAERR;
        goto out_pw;
    }
    rc = alm_config_load_or_report(&cfg, false);
    if (rc)
        goto out_pw;
    conn = alm_db_connect_patiently(&cfg, "almanac-user", 30000, &eb);
    if (!conn || alm_schema_require_current(conn, 10000, &eb) ||
        alm_users_create(conn, 10000, email, pw, admin ? "admin" : "user", &user, &eb)) {
        fprintf(stderr, "almanac: user: %s\n", eb.msg);
        rc = ALM_EXIT_FAILURE;
    } else {
        printf("created %s %s (id %lld)\n", user.role, user.email, (long long)user.id);
    }
    PQfinish(conn);
    alm_config_release(&cfg);
out_pw:
    sodium_memzero(pw, strlen(pw));
    free(pw);
    return rc;
}

int alm_cmd_user(int argc, char **argv)
{
    const char *email = NULL, *file = NULL;
    bool admin = false;

    if (alm_cmd_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return ALM_EXIT_OK;
    }
    if (argc < 2 || strcmp(argv[1], "create") != 0)
        return alm_cmd_usage_error("user", "expected 'create'");
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--admin") == 0)
            admin = true;
        else if (strcmp(argv[i], "--email") == 0 && i + 1 < argc)
            email = argv[++i];
        else if (strcmp(argv[i], "--password-file") == 0 && i + 1 < argc)
            file = argv[++i];
        else
            return alm_cmd_usage_error("user", "unknown argument '%s'", argv[i]);
    }
    if (!email)
        return alm_cmd_usage_error("user", "--email is required");
    alm_signals_unblock();
    alm_log_init("user", ALM_LOG_WARN);
    return create(email, admin, file);
}
