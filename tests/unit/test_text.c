/* SPDX-License-Identifier: Apache-2.0 */
/* UTF-8 validation, conversion to UTF-8 with iconv, and the charset parameter. */
#include "unit.h"
#include "text.h"

#include <stdlib.h>
#include <string.h>

static bool valid(const char *s)
{
    return alm_text_valid_utf8(s, strlen(s));
}

static void valid_utf8_accepted(void **state)
{
    (void)state;
    assert_true(alm_text_valid_utf8("", 0));
    assert_true(alm_text_valid_utf8(NULL, 0));
    assert_true(valid("plain ASCII \t\r\n"));
    assert_true(valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x9a"));           /* é € 📚 */
    assert_true(valid("\xc2\x80 \xdf\xbf"));                                   /* U+0080, U+07FF */
    assert_true(valid("\xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 \xef\xbf\xbf")); /* around D800 */
    assert_true(valid("\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf")); /* U+10000, U+10FFFF */
    assert_true(valid("\xef\xbb\xbf"
                      "BOM is a character"));
}

static void invalid_utf8_refused(void **state)
{
    const char *bad[] = {
        "\xc0\x80",         /* overlong NUL */
        "\xc1\xbf",         /* overlong */
        "\xe0\x80\x80",     /* overlong */
        "\xe0\x9f\xbf",     /* overlong, top of the range */
        "\xf0\x80\x80\x80", /* overlong */
        "\xf0\x8f\xbf\xbf", /* overlong */
        "\xed\xa0\x80",     /* U+D800 */
        "\xed\xbf\xbf",     /* U+DFFF */
        "\xf4\x90\x80\x80", /* U+110000 */
        "\xf5\x80\x80\x80", /* past any plane */
        "\xff",
        "\xfe",
        "\x80", /* stray continuation bytes */
        "a\xbf",
        "\xc3", /* truncated sequences */
        "\xe2\x82",
        "\xf0\x9f\x93",
        "\xe2\x82\x41", /* a continuation replaced by ASCII */
        "\xc3\xc3\xa9",
    };
    (void)state;
    for (size_t i = 0; i < ALM_ARRAY_SIZE(bad); i++) {
        char buf[16];
        assert_false(valid(bad[i]));
        /* also in the middle of good text */
        snprintf(buf, sizeof(buf), "ok %s ok", bad[i]);
        assert_false(valid(buf));
    }
    /* NUL: documents are text */
    assert_false(alm_text_valid_utf8("a\0b", 3));
    /* a multi-byte sequence cut by the length, not by a NUL */
    assert_false(alm_text_valid_utf8("caf\xc3\xa9", 4));
}

/* Converts and returns the text, or NULL; *err is the outcome. */
static char *conv(const char *cs, const char *s, size_t n, size_t max, enum alm_err *err)
{
    struct alm_errbuf eb;
    char *out = (char *)1;
    size_t outlen = 99;

    *err = alm_text_to_utf8(cs, s, n, max, &out, &outlen, &eb);
    if (*err) {
        assert_null(out);
        assert_int_equal(outlen, 0);
        assert_true(eb.msg[0] != '\0');
        return NULL;
    }
    assert_non_null(out);
    assert_int_equal(strlen(out), outlen);
    assert_true(outlen <= max);
    return out;
}

static void assert_converts(const char *cs, const char *s, size_t n, const char *want)
{
    enum alm_err err;
    char *out = conv(cs, s, n, 1024, &err);

    assert_int_equal(err, ALM_OK);
    assert_string_equal(out, want);
    free(out);
}

static void assert_fails(const char *cs, const char *s, size_t n, size_t max, enum alm_err want)
{
    enum alm_err err;
    char *out = conv(cs, s, n, max, &err);

    assert_null(out);
    assert_int_equal(err, want);
}

static void converts_legacy_charsets(void **state)
{
    (void)state;
    assert_converts("iso-8859-1", "caf\xe9", 4, "caf\xc3\xa9");
    assert_converts("ISO-8859-1", "caf\xe9", 4, "caf\xc3\xa9");
    assert_converts("latin1", "\xa3\xff", 2, "\xc2\xa3\xc3\xbf");
    assert_converts("windows-1252", "\x80 5", 3, "\xe2\x82\xac 5");
    assert_converts("cp1252", "\x93q\x94", 3, "\xe2\x80\x9cq\xe2\x80\x9d");
    assert_converts("iso-8859-15", "\xa4", 1, "\xe2\x82\xac");
    assert_converts("iso-8859-1", "", 0, "");
}

static void converts_utf16(void **state)
{
    (void)state;
    /* BOM then "hé€", little and big endian: the BOM says which, and is not kept */
    assert_converts("UTF-16", "\xff\xfeh\0\xe9\0\xac\x20", 8, "h\xc3\xa9\xe2\x82\xac");
    assert_converts("utf-16", "\xfe\xff\0h\0\xe9\x20\xac", 8, "h\xc3\xa9\xe2\x82\xac");
    /* an explicit byte order with a BOM: the BOM decodes to U+FEFF, stripped */
    assert_converts("UTF-16LE", "\xff\xfeh\0", 4, "h");
    /* a surrogate pair: U+1F4DA */
    assert_converts("UTF-16LE", "\x3d\xd8\xda\xdc", 4, "\xf0\x9f\x93\x9a");
    /* a lone surrogate, and an odd length */
    assert_fails("UTF-16LE", "\x3d\xd8h\0", 4, 1024, ALM_ERR_UNPROCESSABLE);
    assert_fails("UTF-16LE", "h\0i", 3, 1024, ALM_ERR_UNPROCESSABLE);
}

static void utf8_and_ascii_validated_only(void **state)
{
    (void)state;
    assert_converts("utf-8", "caf\xc3\xa9", 5, "caf\xc3\xa9");
    assert_converts("UTF8", "x", 1, "x");
    assert_converts("us-ascii", "plain", 5, "plain");
    assert_converts("ASCII", "plain", 5, "plain");
    assert_fails("utf-8", "caf\xe9", 4, 1024, ALM_ERR_UNPROCESSABLE);
    assert_fails("us-ascii", "\xc0\x80", 2, 1024, ALM_ERR_UNPROCESSABLE);
    assert_fails("utf-8", "a\0b", 3, 1024, ALM_ERR_UNPROCESSABLE);
    /* a NUL decoded from another charset is refused as well */
    assert_fails("iso-8859-1", "a\0b", 3, 1024, ALM_ERR_UNPROCESSABLE);
}

static void invalid_input_refused(void **state)
{
    (void)state;
    /* bytes windows-1252 leaves undefined */
    assert_fails("windows-1252", "\x81", 1, 1024, ALM_ERR_UNPROCESSABLE);
    /* a truncated multi-byte sequence */
    assert_fails("shift_jis", "\x82", 1, 1024, ALM_ERR_UNPROCESSABLE);
    assert_converts("shift_jis", "\x82\xa0", 2, "\xe3\x81\x82");
}

static void unknown_charset(void **state)
{
    (void)state;
    assert_fails("klingon-8", "x", 1, 1024, ALM_ERR_MEDIA_TYPE);
    assert_fails("", "x", 1, 1024, ALM_ERR_MEDIA_TYPE);
    assert_fails(NULL, "x", 1, 1024, ALM_ERR_MEDIA_TYPE);
    /* iconv suffixes and paths never reach iconv_open */
    assert_fails("ISO-8859-1//IGNORE", "x", 1, 1024, ALM_ERR_MEDIA_TYPE);
    assert_fails("../../tmp/x", "x", 1, 1024, ALM_ERR_MEDIA_TYPE);
    assert_fails("iso 8859 1", "x", 1, 1024, ALM_ERR_MEDIA_TYPE);
}

static void cap_enforced(void **state)
{
    char latin[600];
    enum alm_err err;
    char *out;
    (void)state;
    memset(latin, '\xe9', sizeof(latin));
    /* 600 bytes become 1200 */
    assert_fails("iso-8859-1", latin, sizeof(latin), 1199, ALM_ERR_TOO_LARGE);
    out = conv("iso-8859-1", latin, sizeof(latin), 1200, &err);
    assert_int_equal(err, ALM_OK);
    assert_int_equal(strlen(out), 1200);
    free(out);
    assert_fails("utf-8", "abcd", 4, 3, ALM_ERR_TOO_LARGE);
    assert_fails("iso-8859-1", "\xe9", 1, 1, ALM_ERR_TOO_LARGE);
    assert_fails("iso-8859-1", "a", 1, 0, ALM_ERR_TOO_LARGE);
    out = conv("iso-8859-1", "", 0, 0, &err);
    assert_int_equal(err, ALM_OK);
    assert_string_equal(out, "");
    free(out);
    /* the BOM does not count against the cap */
    out = conv("utf-8",
               "\xef\xbb\xbf"
               "abc",
               6, 3, &err);
    assert_int_equal(err, ALM_OK);
    assert_string_equal(out, "abc");
    free(out);
}

static void bom_stripped(void **state)
{
    (void)state;
    assert_converts("utf-8",
                    "\xef\xbb\xbf"
                    "abc",
                    6, "abc");
    assert_converts("utf-8", "\xef\xbb\xbf", 3, "");
    /* only one, and only at the start */
    assert_converts("utf-8", "\xef\xbb\xbf\xef\xbb\xbf", 6, "\xef\xbb\xbf");
    assert_converts("utf-8", "a\xef\xbb\xbf", 4, "a\xef\xbb\xbf");
    assert_converts("UTF-16BE", "\xfe\xff\0a", 4, "a");
}

static const char *charset(const char *ct)
{
    static char out[32];
    if (!alm_text_charset_param(ct, out, sizeof(out)))
        return "(none)";
    return out;
}

static void charset_param(void **state)
{
    char small[6];
    (void)state;
    assert_string_equal(charset("text/plain; charset=\"ISO-8859-1\""), "iso-8859-1");
    assert_string_equal(charset("text/plain; charset=UTF-8"), "utf-8");
    assert_string_equal(charset("text/plain;charset=windows-1252"), "windows-1252");
    assert_string_equal(charset("text/plain ;  CHARSET = \"Shift_JIS\" ; format=flowed"),
                        "shift_jis");
    assert_string_equal(charset("text/plain; format=flowed; Charset=utf-16"), "utf-16");
    assert_string_equal(charset("text/plain; name=\"a;charset=x\"; charset=us-ascii"), "us-ascii");
    assert_string_equal(charset("text/plain; charset=\"a\\\"b\""), "a\"b");
    assert_string_equal(charset("text/plain"), "(none)");
    assert_string_equal(charset("text/plain; format=flowed"), "(none)");
    assert_string_equal(charset("text/plain; charset="), "(none)");
    assert_string_equal(charset("text/plain; charset=\"\""), "(none)");
    assert_string_equal(charset("text/plain; charset=\"utf-8"), "(none)");
    assert_string_equal(charset("text/plain; charset"), "(none)");
    assert_string_equal(charset("text/plain; xcharset=utf-8"), "(none)");
    assert_string_equal(charset(""), "(none)");
    assert_string_equal(charset(NULL), "(none)");
    /* too long for the caller's buffer: absent rather than cut */
    assert_false(alm_text_charset_param("text/plain; charset=utf-16le", small, sizeof(small)));
    assert_string_equal(small, "");
    assert_true(alm_text_charset_param("text/plain; charset=utf-8", small, sizeof(small)));
    assert_string_equal(small, "utf-8");
}

static void assert_sniffs(const char *html, const char *want)
{
    char cs[64];
    alm_text_sniff_html_charset(html, strlen(html), cs, sizeof(cs));
    assert_string_equal(cs, want);
}

static void html_charset_sniffing(void **state)
{
    (void)state;
    assert_sniffs("\xef\xbb\xbf<p>x</p>", "utf-8");
    assert_sniffs("<META CHARSET=\"ISO-8859-1\"><p>caf\xe9</p>", "iso-8859-1");
    assert_sniffs("<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1251\">",
                  "windows-1251");
    /* the standard: a meta that says UTF-16 in ASCII bytes means UTF-8 */
    assert_sniffs("<meta charset=utf-16>", "utf-8");
    /* no label: UTF-8 when it is, else windows-1252 */
    assert_sniffs("<p>caf\xc3\xa9</p>", "utf-8");
    assert_sniffs("<p>caf\xe9</p>", "windows-1252");
    /* a meta past the first 1024 bytes is not looked at */
    char late[1200];
    memset(late, ' ', sizeof(late));
    memcpy(late + 1100, "<meta charset=koi8-r>", 21);
    late[sizeof(late) - 1] = '\0';
    assert_sniffs(late, "utf-8");
    /* a NUL ends a label: it is no name, so no label was found (not an empty name) */
    static const char nul[] = "<meta charset=\0utf-8><p>caf\xe9</p>";
    char cs[64];
    alm_text_sniff_html_charset(nul, sizeof(nul) - 1, cs, sizeof(cs));
    assert_string_equal(cs, "windows-1252");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_utf8_accepted),
        cmocka_unit_test(invalid_utf8_refused),
        cmocka_unit_test(converts_legacy_charsets),
        cmocka_unit_test(converts_utf16),
        cmocka_unit_test(utf8_and_ascii_validated_only),
        cmocka_unit_test(invalid_input_refused),
        cmocka_unit_test(unknown_charset),
        cmocka_unit_test(cap_enforced),
        cmocka_unit_test(html_charset_sniffing),
        cmocka_unit_test(bom_stripped),
        cmocka_unit_test(charset_param),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
