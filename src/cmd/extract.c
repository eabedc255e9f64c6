/* SPDX-License-Identifier: Apache-2.0 */
/* almanac extract: the office, OpenDocument and EPUB reader as its own process, run by
 * the worker in the sandbox (extract_doc.c). Reads the file on stdin, prints the
 * extraction as JSON on stdout; a bad file is one line on stderr and exit 65. Usable by
 * hand too: `almanac extract --type application/epub+zip < book.epub`. */
#include "compat.h"
#include "cmd.h"
#include "extract_doc.h"
#include "mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: almanac extract --type MEDIA-TYPE < FILE\n"
    "\n"
    "Extracts the text of a DOCX, PPTX, XLSX, ODT, ODS, ODP or EPUB file read from stdin\n"
    "and prints it as JSON (text, sections, locations, title). The worker runs it in its\n"
    "sandbox. Exits 0, 65 for a file that cannot be read, 64 for a bad command line.\n";

#define MAX_INPUT (1024u << 20)

static int parse(int argc, char **argv, void *type)
{
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--type") == 0)
            *(const char **)type = argv[i + 1];
    }
    if (!*(const char **)type)
        return alm_cmd_usage_error("extract", "--type MEDIA-TYPE is required");
    return ALM_EXIT_OK;
}

int alm_cmd_extract(int argc, char **argv)
{
    struct alm_buf in = ALM_BUF_INIT(MAX_INPUT);
    struct alm_extracted x;
    struct alm_errbuf eb = {{0}};
    const char *type = NULL;
    char buf[65536];
    ssize_t n;
    enum alm_err err;
    char *json;
    struct alm_cmd_start start = {.name = "extract", .usage = usage, .parse = parse, .args = &type};
    int rc;

    if (!alm_cmd_start(&start, argc, argv, &rc))
        return rc;
    while ((n = read(0, buf, sizeof(buf))) > 0) {
        if (alm_buf_append(&in, buf, (size_t)n)) {
            fprintf(stderr, "the file is larger than %u MiB\n", MAX_INPUT >> 20);
            alm_buf_release(&in);
            return 65;
        }
    }
    err = alm_extract_office(type, in.data ? in.data : "", in.len, &x, &eb);
    alm_buf_release(&in);
    if (err == ALM_ERR_MEDIA_TYPE) {
        alm_extracted_release(&x);
        return alm_cmd_usage_error("extract", "%s", eb.msg);
    }
    if (err) {
        fprintf(stderr, "%s\n", eb.msg);
        alm_extracted_release(&x);
        return err == ALM_ERR_UNPROCESSABLE ? 65 : ALM_EXIT_FAILURE;
    }
    json = alm_extracted_to_json(&x);
    alm_extracted_release(&x);
    fputs(json, stdout);
    free(json);
    return fflush(stdout) == 0 ? ALM_EXIT_OK : ALM_EXIT_FAILURE;
}
