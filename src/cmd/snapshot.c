/* SPDX-License-Identifier: Apache-2.0 */
#include "compat.h"
#include "cmd.h"
#include "db.h"
#include "schema.h"
#include "snapshot.h"
#include "version.h"
#include "vindex.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: almanac snapshot save [--out FILE [--meta FILE]]\n"
    "       almanac snapshot load [--in FILE] [--sha256 HEX]\n"
    "       almanac snapshot info\n"
    "\n"
    "Qdrant snapshots of the chunk collection search reads (ALMANAC_QDRANT_COLLECTION, or\n"
    "the one `almanac reindex --to-collection` switched to), for backups.\n"
    "save   has Qdrant snapshot the collection, streams the file to FILE or to stdout (never\n"
    "       to a terminal), deletes it from Qdrant, and prints one JSON line to stderr:\n"
    "       collection, name, bytes, sha256, points, dim; with --meta that line, plus\n"
    "       exists, configured_dim and this binary's version and schema (as `version\n"
    "       --json`), goes to the meta FILE too, and a missing collection is not an error\n"
    "       there (exists false, no snapshot file): for jobs without a shell (Kubernetes)\n"
    "load   replaces the collection with the snapshot read from FILE or stdin; with\n"
    "       --sha256 Qdrant refuses a file that does not match\n"
    "info   prints {collection, exists, points, dim, configured_dim} as JSON\n"
    "Runs in the api or worker container (`docker compose exec -T api almanac snapshot\n"
    "save > file`): no shell and no curl needed. Exits 0, 1 on failure, 64 on bad usage,\n"
    "78 on a configuration error.\n";

struct args {
    const char *verb;
    const char *file;
    const char *meta;
    const char *sha256;
};

static int parse(int argc, char **argv, void *args)
{
    struct args *a = args;

    if (argc < 2) { /* the status itself: the analyser cannot see that one is never 0 */
        alm_cmd_usage_error("snapshot", "expected 'save', 'load' or 'info'");
        return ALM_EXIT_USAGE;
    }
    a->verb = argv[1];
    bool save = strcmp(a->verb, "save") == 0, load = strcmp(a->verb, "load") == 0;
    if (!save && !load && strcmp(a->verb, "info") != 0)
        return alm_cmd_usage_error("snapshot", "unknown action '%s'", a->verb);
    for (int i = 2; i < argc; i++) {
        bool has_value = i + 1 < argc;
        if (has_value &&
            ((save && strcmp(argv[i], "--out") == 0) || (load && strcmp(argv[i], "--in") == 0)))
            a->file = argv[++i];
        else if (strcmp(argv[i], "--meta") == 0 && has_value && save)
            a->meta = argv[++i];
        else if (strcmp(argv[i], "--sha256") == 0 && has_value && load)
            a->sha256 = argv[++i];
        else
            return alm_cmd_usage_error("snapshot", "unexpected argument '%s'", argv[i]);
    }
    if (a->meta && !a->file)
        return alm_cmd_usage_error("snapshot", "--meta needs --out");
    return ALM_EXIT_OK;
}

static int print_json(FILE *out, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    if (!text)
        return ALM_EXIT_FAILURE;
    fprintf(out, "%s\n", text);
    free(text);
    return ALM_EXIT_OK;
}

/* The collection search reads: after a switch to another embedding model it is the
 * active row of vector_collections, not the setting. Read once, when the database
 * answers; else (no database, a schema before vector_collections) the setting's. */
static char active_collection[208];

static void resolve_collection(const struct alm_config *cfg)
{
    struct alm_errbuf eb = {{0}};
    struct alm_vindex v;
    PGconn *pg = cfg->database_url ? alm_db_connect(cfg, "almanac-snapshot", 5000, &eb) : NULL;

    if (pg && !alm_vindex_load(pg, 5000, cfg, &v, &eb))
        snprintf(active_collection, sizeof(active_collection), "%s", v.active.name);
    PQfinish(pg);
}

static const char *collection_of(const struct alm_config *cfg)
{
    return active_collection[0] ? active_collection : cfg->qdrant_collection;
}

/* The --meta file: the summary, whether the collection exists, and this binary's
 * version and schema, for a backup script that cannot run almanac itself. */
static int write_meta(const struct alm_config *cfg, const char *path, bool exists,
                      const struct alm_snapshot_info *info)
{
    FILE *f = fopen(path, "wx");
    json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:s, s:b, s:s, s:I, s:s, s:I, s:I, s:I}", "version",
                          ALM_VERSION, "commit", ALM_GIT_COMMIT, "needs", alm_schema_expected(),
                          "floor", alm_schema_floor(), "collection", collection_of(cfg), "exists",
                          exists, "name", info->name, "bytes", (json_int_t)info->bytes, "sha256",
                          info->sha256, "points", (json_int_t)info->points, "dim",
                          (json_int_t)info->dim, "configured_dim", (json_int_t)cfg->embeddings_dim);
    int rc = f ? print_json(f, o) : (json_decref(o), ALM_EXIT_FAILURE);

    if (!f || fclose(f) != 0 || rc) {
        fprintf(stderr, "almanac: snapshot: cannot write %s\n", path);
        return ALM_EXIT_FAILURE;
    }
    return ALM_EXIT_OK;
}

static int save(const struct alm_config *cfg, const char *file, const char *meta)
{
    struct alm_errbuf eb = {{0}};
    struct alm_snapshot_info info = {0};

    if (meta) {
        int64_t points = 0, dim = 0;
        enum alm_err err = alm_snapshot_collection(cfg, collection_of(cfg), &points, &dim, &eb);
        if (err == ALM_ERR_NOT_FOUND)
            return write_meta(cfg, meta, false, &info);
        if (err) {
            fprintf(stderr, "almanac: snapshot: %s\n", eb.msg);
            return ALM_EXIT_FAILURE;
        }
    }
    FILE *out = file ? fopen(file, "wbx") : stdout;

    if (!out) {
        fprintf(stderr, "almanac: snapshot: cannot create %s (it must not exist)\n", file);
        return ALM_EXIT_FAILURE;
    }
    if (!file && isatty(STDOUT_FILENO)) {
        fprintf(stderr, "almanac: snapshot: refusing to write a snapshot to a terminal: use "
                        "--out FILE or a redirection (and exec -T)\n");
        return ALM_EXIT_USAGE;
    }
    enum alm_err err = alm_snapshot_save(cfg, collection_of(cfg), out, &info, &eb);
    if (file && fclose(out) != 0 && !err)
        err = alm_fail(&eb, ALM_ERR_INTERNAL, "cannot write %s", file);
    if (err) {
        if (file)
            unlink(file); /* never leave a partial snapshot that looks whole */
        fprintf(stderr, "almanac: snapshot: %s\n", eb.msg);
        return ALM_EXIT_FAILURE;
    }
    if (meta && write_meta(cfg, meta, true, &info)) {
        unlink(file);
        return ALM_EXIT_FAILURE;
    }
    return print_json(stderr, json_pack("{s:s, s:s, s:I, s:s, s:I, s:I}", "collection",
                                        collection_of(cfg), "name", info.name, "bytes",
                                        (json_int_t)info.bytes, "sha256", info.sha256, "points",
                                        (json_int_t)info.points, "dim", (json_int_t)info.dim));
}

static int load(const struct alm_config *cfg, const char *file, const char *sha256)
{
    struct alm_errbuf eb = {{0}};
    FILE *in = file ? fopen(file, "rb") : stdin;

    if (!in) {
        fprintf(stderr, "almanac: snapshot: cannot open %s\n", file);
        return ALM_EXIT_FAILURE;
    }
    enum alm_err err = alm_snapshot_load(cfg, collection_of(cfg), in, sha256, &eb);
    if (file)
        fclose(in);
    if (err) {
        fprintf(stderr, "almanac: snapshot: %s\n", eb.msg);
        return err == ALM_ERR_INVALID ? ALM_EXIT_USAGE : ALM_EXIT_FAILURE;
    }
    fprintf(stderr, "almanac: snapshot: collection %s recovered\n", collection_of(cfg));
    return ALM_EXIT_OK;
}

static int info(const struct alm_config *cfg)
{
    struct alm_errbuf eb = {{0}};
    int64_t points = 0, dim = 0;

    enum alm_err err = alm_snapshot_collection(cfg, collection_of(cfg), &points, &dim, &eb);

    if (err && err != ALM_ERR_NOT_FOUND) {
        fprintf(stderr, "almanac: snapshot: %s\n", eb.msg);
        return ALM_EXIT_FAILURE;
    }
    return print_json(stdout, json_pack("{s:s, s:b, s:I, s:I, s:I}", "collection",
                                        collection_of(cfg), "exists", !err, "points",
                                        (json_int_t)points, "dim", (json_int_t)dim,
                                        "configured_dim", (json_int_t)cfg->embeddings_dim));
}

int alm_cmd_snapshot(int argc, char **argv)
{
    struct alm_config cfg = {0};
    struct args a = {0};
    /* stdout may carry the snapshot itself: no log line may go there. */
    struct alm_cmd_start start = {.name = "snapshot",
                                  .usage = usage,
                                  .parse = parse,
                                  .args = &a,
                                  .cfg = &cfg,
                                  .log_level = ALM_LOG_FATAL,
                                  .log_level_fixed = true};
    int rc;

    if (!alm_cmd_start(&start, argc, argv, &rc))
        return rc;
    if (!cfg.qdrant_url || !cfg.qdrant_url[0]) {
        fprintf(stderr, "almanac: snapshot: ALMANAC_QDRANT_URL is not set\n");
        rc = ALM_EXIT_CONFIG;
    } else {
        resolve_collection(&cfg);
        if (strcmp(a.verb, "save") == 0)
            rc = save(&cfg, a.file, a.meta);
        else if (strcmp(a.verb, "load") == 0)
            rc = load(&cfg, a.file, a.sha256);
        else
            rc = info(&cfg);
    }
    alm_config_release(&cfg);
    return rc;
}
