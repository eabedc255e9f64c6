/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "cmd.h"
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

struct args {
    const char *email;
    const char *file; /* --password-file; NULL: standard input */
    bool admin;
};

static int parse(int argc, char **argv, void *args)
{
    struct args *a = args;

    if (argc < 2 || strcmp(argv[1], "create") != 0)
        return alm_cmd_usage_error("user", "expected 'create'");
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--admin") == 0)
            a->admin = true;
        else if (strcmp(argv[i], "--email") == 0 && i + 1 < argc)
            a->email = argv[++i];
        else if (strcmp(argv[i], "--password-file") == 0 && i + 1 < argc)
            a->file = argv[++i];
        else
            return alm_cmd_usage_error("user", "unknown argument '%s'", argv[i]);
    }
    if (!a->email)
        return alm_cmd_usage_error("user", "--email is required");
    return ALM_EXIT_OK;
}

static int create(const struct alm_config *cfg, const struct args *a)
{
    struct alm_errbuf eb = {{0}};
    struct alm_user user;
    PGconn *conn = NULL;
    char *pw = password_from(a->file);
    int rc = ALM_EXIT_OK;

    if (!pw) {
        fprintf(stderr, "almanac: user: cannot read the password from %s\n",
                a->file ? a->file : "standard input");
        return ALM_EXIT_USAGE;
    }
    if (alm_users_validate(a->email, pw, &eb)) {
        fprintf(stderr, "almanac: user: %s\n", eb.msg);
        rc = EXIT_DATAERR;
        goto out;
    }
    conn = alm_cmd_db_or_report(cfg, "user", 30000, true);
    if (!conn) {
        rc = ALM_EXIT_FAILURE;
    } else if (alm_users_create(conn, 10000, a->email, pw, a->admin ? "admin" : "user", &user,
                                &eb)) {
        fprintf(stderr, "almanac: user: %s\n", eb.msg);
        rc = ALM_EXIT_FAILURE;
    } else {
        printf("created %s %s (id %lld)\n", user.role, user.email, (long long)user.id);
    }
out:
    PQfinish(conn);
    sodium_memzero(pw, strlen(pw));
    free(pw);
    return rc;
}

int alm_cmd_user(int argc, char **argv)
{
    struct alm_config cfg = {0};
    struct args a = {0};
    struct alm_cmd_start start = {.name = "user",
                                  .usage = usage,
                                  .parse = parse,
                                  .args = &a,
                                  .cfg = &cfg,
                                  .log_level = ALM_LOG_WARN};
    int rc;

    if (!alm_cmd_start(&start, argc, argv, &rc))
        return rc;
    rc = create(&cfg, &a);
    alm_config_release(&cfg);
    return rc;
}
