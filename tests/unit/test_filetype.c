/* SPDX-License-Identifier: Apache-2.0 */
/* Upload types from the bytes (the system's libmagic database), then the name. */
#include "unit.h"
#include "filetype.h"

#include <string.h>

static void assert_type(const char *data, size_t len, const char *declared, const char *name,
                        const char *want)
{
    char t[128];
    alm_filetype_detect(data, len, declared, name, t, sizeof(t));
    assert_string_equal(t, want);
}

#define S(lit) lit, sizeof(lit) - 1

static void bytes_win_over_names(void **state)
{
    (void)state;
    assert_type(S("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"), "text/plain", "a.txt",
                "application/pdf");
    assert_type(S("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\1\0\0\0\1\x08\x06\0\0\0"), NULL, "x.pdf",
                "image/png");
    /* text named as a binary format is text */
    assert_type(S("just some words, nothing more\n"), "application/pdf", "fake.pdf", "text/plain");
    assert_type(S("\x1f\x8b\x08\0\0\0\0\0\0\x03\x03\0\0\0\0\0\0\0\0\0"), "application/gzip", "a.gz",
                "");
}

static void text_types_from_the_client(void **state)
{
    (void)state;
    assert_type(S("# Title\n\nSome *text*.\n"), NULL, "README.md", "text/markdown");
    assert_type(S("# Title\n\nSome *text*.\n"), "text/x-markdown", "notes", "text/markdown");
    assert_type(S("<!DOCTYPE html><html><body><p>hi</p></body></html>\n"), NULL, "page",
                "text/html");
    assert_type(S("plain words\n"), "application/octet-stream", "notes.txt", "text/plain");
    assert_type("", 0, NULL, "empty.txt", "text/plain"); /* refused later as empty */
    assert_type(S("caf\xe9 latin-1\n"), "text/plain; charset=iso-8859-1", "x.txt", "text/plain");
}

static void zip_packages_by_name(void **state)
{
    /* a zip that libmagic knows only as a zip: its name says which package */
    static const char zip[] = "PK\x03\x04\x14\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
                              "\x05\0\0\0hello"
                              "PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
    (void)state;
    assert_type(zip, sizeof(zip) - 1, NULL, "notes.odt", "application/vnd.oasis.opendocument.text");
    assert_type(zip, sizeof(zip) - 1, "application/octet-stream", "book.epub",
                "application/epub+zip");
    assert_type(zip, sizeof(zip) - 1, NULL, "archive.zip", "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bytes_win_over_names),
        cmocka_unit_test(text_types_from_the_client),
        cmocka_unit_test(zip_packages_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
