/* SPDX-License-Identifier: Apache-2.0 */
/* multipart/form-data bodies: browser uploads, line-ending variants, and malformed input. */
#include "unit.h"
#include "multipart.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* As Chrome sends it: the delimiter lines are "--" B. */
#define B  "----WebKitFormBoundary7MA4YWxkTrZu0gW"
#define CT "multipart/form-data; boundary=" B

/* The parser is given an exact-size heap copy, so that ASan sees any read past the end. */
static enum alm_err parse_n(const char *ct, const char *body, size_t len, struct alm_multipart *m,
                            struct alm_errbuf *eb, char **copy)
{
    *copy = malloc(len ? len : 1);
    assert_non_null(*copy);
    memcpy(*copy, body, len);
    return alm_multipart_parse(ct, *copy, len, m, eb);
}

static enum alm_err parse(const char *ct, const char *body, struct alm_multipart *m,
                          struct alm_errbuf *eb, char **copy)
{
    return parse_n(ct, body, strlen(body), m, eb, copy);
}

static void assert_data(const struct alm_multipart_part *p, const char *want)
{
    assert_non_null(p);
    assert_int_equal(p->len, strlen(want));
    assert_memory_equal(p->data, want, p->len);
}

/* The error reason of a body that must be refused. */
static const char *refusal(const char *ct, const char *body)
{
    static struct alm_errbuf eb;
    struct alm_multipart m;
    char *copy;
    enum alm_err err = parse(ct, body, &m, &eb, &copy);

    free(copy);
    assert_int_not_equal(err, ALM_OK);
    assert_int_equal(m.nparts, 0);
    return eb.msg;
}

static void browser_upload(void **state)
{
    const char *body = "--" B "\r\n"
                       "Content-Disposition: form-data; name=\"title\"\r\n"
                       "\r\n"
                       "Quarterly report\r\n"
                       "--" B "\r\n"
                       "Content-Disposition: form-data; name=\"tags\"\r\n"
                       "\r\n"
                       "finance, q3\r\n"
                       "--" B "\r\n"
                       "Content-Disposition: form-data; name=\"file\"; filename=\"report.txt\"\r\n"
                       "Content-Type: text/plain\r\n"
                       "\r\n"
                       "line one\r\nline two\r\n\r\n"
                       "--" B "--\r\n";
    struct alm_multipart m;
    struct alm_errbuf eb;
    const struct alm_multipart_part *p;
    char *copy;
    (void)state;
    assert_int_equal(parse(CT, body, &m, &eb, &copy), ALM_OK);
    assert_int_equal(m.nparts, 3);
    p = alm_multipart_find(&m, "title");
    assert_data(p, "Quarterly report");
    assert_null(p->filename);
    assert_null(p->content_type);
    assert_data(alm_multipart_find(&m, "tags"), "finance, q3");
    p = alm_multipart_find(&m, "file");
    assert_data(p, "line one\r\nline two\r\n");
    assert_string_equal(p->filename, "report.txt");
    assert_string_equal(p->content_type, "text/plain");
    assert_ptr_equal(p, &m.parts[2]);
    assert_null(alm_multipart_find(&m, "missing"));
    assert_null(alm_multipart_find(&m, "titl"));
    free(copy);
}

static void unquoted_boundary_and_preamble(void **state)
{
    const char *body = "This is a preamble.\r\n"
                       "--xyz\r\n"
                       "content-disposition: FORM-DATA; name=a\r\n"
                       "\r\n"
                       "1\r\n"
                       "--xyz  \r\n" /* transport padding */
                       "Content-Disposition: form-data;name=\"b\"\r\n"
                       "X-Other: ignored\r\n"
                       "\r\n"
                       "2\r\n"
                       "--xyz--\r\n"
                       "This is an epilogue, with --xyz\r\n";
    struct alm_multipart m;
    struct alm_errbuf eb;
    char *copy;
    (void)state;
    assert_int_equal(parse("Multipart/Form-Data;BOUNDARY=xyz", body, &m, &eb, &copy), ALM_OK);
    assert_int_equal(m.nparts, 2);
    assert_data(alm_multipart_find(&m, "a"), "1");
    assert_data(alm_multipart_find(&m, "b"), "2");
    free(copy);
    assert_int_equal(
        parse("multipart/form-data; charset=utf-8; boundary=\"xyz\"", body, &m, &eb, &copy),
        ALM_OK);
    assert_int_equal(m.nparts, 2);
    free(copy);
}

static void lf_line_endings(void **state)
{
    const char *body = "--b\n"
                       "Content-Disposition: form-data; name=\"a\"\n"
                       "\n"
                       "one\ntwo\n"
                       "--b\n"
                       "Content-Disposition: form-data; name=\"f\"; filename=\"x.bin\"\n"
                       "\n"
                       "\n"
                       "--b--";
    struct alm_multipart m;
    struct alm_errbuf eb;
    char *copy;
    (void)state;
    assert_int_equal(parse("multipart/form-data; boundary=b", body, &m, &eb, &copy), ALM_OK);
    assert_int_equal(m.nparts, 2);
    assert_data(alm_multipart_find(&m, "a"), "one\ntwo");
    assert_data(alm_multipart_find(&m, "f"), "");
    free(copy);
}

static const char *filename_of(const char *disposition)
{
    static char name[256];
    char body[1024];
    struct alm_multipart m;
    struct alm_errbuf eb;
    char *copy;

    snprintf(body, sizeof(body), "--b\r\nContent-Disposition: %s\r\n\r\nx\r\n--b--\r\n",
             disposition);
    if (parse("multipart/form-data; boundary=b", body, &m, &eb, &copy) != ALM_OK) {
        free(copy);
        return "(refused)";
    }
    assert_int_equal(m.nparts, 1);
    snprintf(name, sizeof(name), "%s", m.parts[0].filename ? m.parts[0].filename : "(none)");
    free(copy);
    return name;
}

static void filenames_reduced(void **state)
{
    char longname[600];
    (void)state;
    /* browsers send Windows paths unescaped; an escaped one gives the same */
    assert_string_equal(filename_of("form-data; name=f; filename=\"C:\\x\\doc.txt\""), "doc.txt");
    assert_string_equal(filename_of("form-data; name=f; filename=\"C:\\\\x\\\\doc.txt\""),
                        "doc.txt");
    assert_string_equal(filename_of("form-data; name=f; filename=\"../../etc/passwd\""), "passwd");
    assert_string_equal(filename_of("form-data; name=f; filename=../../etc/passwd"), "passwd");
    assert_string_equal(filename_of("form-data; name=f; filename=\"a\\\"b.txt\""), "a\"b.txt");
    assert_string_equal(filename_of("form-data; name=f; filename=\"dir/..\""), "");
    assert_string_equal(filename_of("form-data; name=f; filename=\".\""), "");
    assert_string_equal(filename_of("form-data; name=f; filename=\"\""), "");
    assert_string_equal(filename_of("form-data; name=f; filename=\"r\xc3\xa9sum\xc3\xa9.pdf\""),
                        "r\xc3\xa9sum\xc3\xa9.pdf");
    assert_string_equal(filename_of("form-data; name=f"), "(none)");
    /* filename* (RFC 5987) is ignored, as RFC 7578 asks */
    assert_string_equal(filename_of("form-data; name=f; filename*=UTF-8''evil%2F.txt"), "(none)");
    /* only the last component has to fit */
    snprintf(longname, sizeof(longname), "form-data; name=f; filename=\"/%0300d/ok.txt\"", 0);
    assert_string_equal(filename_of(longname), "ok.txt");
    snprintf(longname, sizeof(longname), "form-data; name=f; filename=\"/%0256d\"", 0);
    assert_string_equal(filename_of(longname), "(refused)");
    snprintf(longname, sizeof(longname), "form-data; name=f; filename=\"/%0255d\"", 0);
    assert_int_equal(strlen(filename_of(longname)), 255);
}

static void disposition_rules(void **state)
{
    (void)state;
    assert_string_equal(filename_of("attachment; name=f; filename=a"), "(refused)");
    assert_string_equal(filename_of("form-data; filename=a"), "(refused)");
    assert_string_equal(filename_of("form-data; name=\"\""), "(refused)");
    assert_string_equal(filename_of("form-data; name=f; name=g"), "(refused)");
    assert_string_equal(filename_of("form-data; name=f; filename=a; filename=b"), "(refused)");
    assert_string_equal(filename_of("form-data; name=\"f"), "(refused)");
    assert_string_equal(filename_of("form-data; name"), "(refused)");
    assert_string_equal(filename_of("form-data; name=f x"), "(refused)");
    assert_string_equal(refusal("multipart/form-data; boundary=b",
                                "--b\r\nContent-Disposition: form-data; name=a\r\n"
                                "Content-Disposition: form-data; name=b\r\n\r\nx\r\n--b--"),
                        "malformed part header");
    assert_string_equal(refusal("multipart/form-data; boundary=b",
                                "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--"),
                        "part without content-disposition form-data name");
}

static void empty_file(void **state)
{
    const char *body = "--b\r\n"
                       "Content-Disposition: form-data; name=\"file\"; filename=\"empty.txt\"\r\n"
                       "Content-Type: text/plain\r\n"
                       "\r\n"
                       "\r\n"
                       "--b\r\n"
                       "Content-Disposition: form-data; name=\"terse\"\r\n"
                       "\r\n"
                       "--b--\r\n";
    struct alm_multipart m;
    struct alm_errbuf eb;
    char *copy;
    (void)state;
    assert_int_equal(parse("multipart/form-data; boundary=b", body, &m, &eb, &copy), ALM_OK);
    assert_int_equal(m.nparts, 2);
    assert_data(alm_multipart_find(&m, "file"), "");
    assert_string_equal(m.parts[0].filename, "empty.txt");
    /* no data line at all: the blank line doubles as the one before the delimiter */
    assert_data(alm_multipart_find(&m, "terse"), "");
    free(copy);
}

static void malformed_bodies(void **state)
{
    const char *ct = "multipart/form-data; boundary=b";
    (void)state;
    assert_string_equal(
        refusal(ct, "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nunfinished"),
        "missing closing delimiter");
    assert_string_equal(
        refusal(ct, "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b\r\n"),
        "missing closing delimiter");
    assert_string_equal(refusal(ct, "--b\r\nContent-Disposition: form-data; name=a"),
                        "missing closing delimiter");
    assert_string_equal(refusal(ct, ""), "missing closing delimiter");
    assert_string_equal(refusal(ct, "no delimiter at all"), "missing closing delimiter");
    /* the closing delimiter must start a line too */
    assert_string_equal(refusal(ct, "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx--b--"),
                        "missing closing delimiter");
    /* a part without the blank line after its headers */
    assert_string_equal(refusal(ct, "--b\r\nContent-Disposition: form-data; name=a\r\n--b--\r\n"),
                        "malformed part header");
    assert_string_equal(refusal(ct, "--b\r\nno colon here\r\n\r\nx\r\n--b--\r\n"),
                        "malformed part header");
    assert_string_equal(refusal(ct, "--b\r\nContent-Disposition : form-data; name=a\r\n\r\n"
                                    "x\r\n--b--\r\n"),
                        "malformed part header");
    /* a NUL inside a header would cut the name short */
    {
        static const char body[] = "--b\r\nContent-Disposition: form-data; name=\"a\0b\"\r\n\r\n"
                                   "x\r\n--b--\r\n";
        struct alm_multipart m;
        struct alm_errbuf eb;
        char *copy;
        assert_int_equal(parse_n(ct, body, sizeof(body) - 1, &m, &eb, &copy), ALM_ERR_INVALID);
        assert_string_equal(eb.msg, "malformed part header");
        free(copy);
    }
}

static void boundary_problems(void **state)
{
    const char *body = "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b--\r\n";
    char ct[200];
    (void)state;
    assert_string_equal(refusal("multipart/form-data", body), "no boundary");
    assert_string_equal(refusal("multipart/form-data; charset=utf-8", body), "no boundary");
    assert_string_equal(refusal("multipart/form-data; xboundary=b", body), "no boundary");
    assert_string_equal(refusal("multipart/form-data; boundary=", body), "malformed content-type");
    assert_string_equal(refusal("multipart/form-data; boundary=\"\"", body), "bad boundary");
    assert_string_equal(refusal("multipart/form-data; boundary=b; boundary=c", body),
                        "bad boundary");
    assert_string_equal(refusal("multipart/form-data; boundary=\"a b \"", body), "bad boundary");
    assert_string_equal(refusal("multipart/form-data; boundary=\"a\\\\b\"", body), "bad boundary");
    assert_string_equal(refusal("multipart/form-data; boundary=\"b", body),
                        "malformed content-type");
    snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%071d", 0);
    assert_string_equal(refusal(ct, body), "bad boundary");
    assert_string_equal(refusal("multipart/mixed; boundary=b", body), "not multipart/form-data");
    assert_string_equal(refusal("text/plain", body), "not multipart/form-data");
    assert_string_equal(refusal(NULL, body), "not multipart/form-data");
    {
        struct alm_multipart m;
        struct alm_errbuf eb;
        assert_int_equal(alm_multipart_parse(NULL, body, strlen(body), &m, &eb),
                         ALM_ERR_MEDIA_TYPE);
    }
}

static void seventy_char_boundary(void **state)
{
    char ct[200], body[400];
    char b[71];
    struct alm_multipart m;
    struct alm_errbuf eb;
    char *copy;
    (void)state;
    snprintf(b, sizeof(b), "'()+_,-./:=? %057d", 0);
    snprintf(ct, sizeof(ct), "multipart/form-data; boundary=\"%s\"", b);
    snprintf(body, sizeof(body),
             "--%s\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--%s--", b, b);
    assert_int_equal(parse(ct, body, &m, &eb, &copy), ALM_OK);
    assert_int_equal(m.nparts, 1);
    free(copy);
}

static void part_limit(void **state)
{
    char body[4096];
    size_t len = 0;
    struct alm_multipart m;
    struct alm_errbuf eb;
    char *copy;
    (void)state;
    for (int i = 0; i < 17; i++) {
        len += (size_t)snprintf(body + len, sizeof(body) - len,
                                "--b\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\n%d\r\n",
                                i, i);
        if (i == 15) {
            /* 16 parts are fine */
            snprintf(body + len, sizeof(body) - len, "--b--\r\n");
            assert_int_equal(parse("multipart/form-data; boundary=b", body, &m, &eb, &copy),
                             ALM_OK);
            assert_int_equal(m.nparts, 16);
            assert_data(alm_multipart_find(&m, "f15"), "15");
            free(copy);
        }
    }
    snprintf(body + len, sizeof(body) - len, "--b--\r\n");
    assert_string_equal(refusal("multipart/form-data; boundary=b", body), "too many parts");
}

static void boundary_like_data(void **state)
{
    const char *body = "--b\r\n"
                       "Content-Disposition: form-data; name=\"a\"\r\n"
                       "\r\n"
                       "x--b\r\n"            /* not at the start of a line */
                       "--bb\r\n"            /* a longer boundary */
                       "--b-\r\n"            /* neither closing nor a line end */
                       "--b x\r\n"           /* padding then text */
                       "\r\n--\r\n--b\r\r\n" /* partial and bare CR */
                       "end\r\n"
                       "--b--";
    struct alm_multipart m;
    struct alm_errbuf eb;
    char *copy;
    (void)state;
    assert_int_equal(parse("multipart/form-data; boundary=b", body, &m, &eb, &copy), ALM_OK);
    assert_int_equal(m.nparts, 1);
    assert_data(&m.parts[0], "x--b\r\n--bb\r\n--b-\r\n--b x\r\n\r\n--\r\n--b\r\r\nend");
    free(copy);
}

static void binary_data(void **state)
{
    static const char body[] =
        "--b\r\n"
        "Content-Disposition: form-data; name=\"bin\"; filename=\"a.bin\"\r\n"
        "Content-Type: application/octet-stream\r\n"
        "\r\n"
        "\0\1\2\r\n\0--b\xff\xfe\r\r\n\0"
        "\r\n--b--";
    static const char want[] = "\0\1\2\r\n\0--b\xff\xfe\r\r\n\0";
    struct alm_multipart m;
    struct alm_errbuf eb;
    char *copy;
    (void)state;
    assert_int_equal(
        parse_n("multipart/form-data; boundary=b", body, sizeof(body) - 1, &m, &eb, &copy), ALM_OK);
    assert_int_equal(m.nparts, 1);
    assert_int_equal(m.parts[0].len, sizeof(want) - 1);
    assert_memory_equal(m.parts[0].data, want, sizeof(want) - 1);
    assert_true(m.parts[0].data >= copy && m.parts[0].data + m.parts[0].len <= copy + sizeof(body));
    free(copy);
}

static void only_closing_delimiter(void **state)
{
    struct alm_multipart m;
    struct alm_errbuf eb;
    char *copy;
    (void)state;
    assert_int_equal(parse("multipart/form-data; boundary=b", "--b--\r\n", &m, &eb, &copy), ALM_OK);
    assert_int_equal(m.nparts, 0);
    free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(browser_upload),         cmocka_unit_test(unquoted_boundary_and_preamble),
        cmocka_unit_test(lf_line_endings),        cmocka_unit_test(filenames_reduced),
        cmocka_unit_test(disposition_rules),      cmocka_unit_test(empty_file),
        cmocka_unit_test(malformed_bodies),       cmocka_unit_test(boundary_problems),
        cmocka_unit_test(seventy_char_boundary),  cmocka_unit_test(part_limit),
        cmocka_unit_test(boundary_like_data),     cmocka_unit_test(binary_data),
        cmocka_unit_test(only_closing_delimiter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
