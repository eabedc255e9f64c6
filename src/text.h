/* SPDX-License-Identifier: Apache-2.0 */
/* text.h: checking and converting document text to UTF-8. */
#pragma once
#include "compat.h"
#include "err.h"

/* Whether s[0..n) is well-formed UTF-8 (no overlongs, no surrogates, no code points past
 * U+10FFFF). NUL bytes are refused too: documents are text. */
bool alm_text_valid_utf8(const char *s, size_t n);
/* Replaces each byte of an invalid UTF-8 sequence in the string s with '?', in place, so
 * that text from a client (a path, a header) can always be put in a JSON answer or log. */
void alm_text_scrub_utf8(char *s);
/* Converts s[0..n) from charset (an iconv name such as "ISO-8859-1", "windows-1252",
 * "UTF-16"; "utf-8" and "us-ascii" are validated only) to UTF-8. On success *out is a
 * new NUL-terminated string (caller frees) of *outlen bytes, at most max_out bytes.
 * ALM_ERR_MEDIA_TYPE for an unknown charset, ALM_ERR_UNPROCESSABLE for bytes invalid
 * in that charset (or invalid UTF-8), ALM_ERR_TOO_LARGE past max_out; eb says which. */
enum alm_err alm_text_to_utf8(const char *charset, const char *s, size_t n, size_t max_out,
                              char **out, size_t *outlen, struct alm_errbuf *eb) ALM_MUSTCHECK;
/* The value of the charset parameter of a Content-Type header value, copied into out
 * (lower-cased); false when absent. */
bool alm_text_charset_param(const char *content_type, char *out, size_t n);
/* The charset of an HTML document that declares none in its Content-Type, as the HTML
 * standard's sniffing finds it: a byte order mark, else a <meta charset> or <meta
 * http-equiv content="...; charset="> in the first 1024 bytes, else UTF-8 when the bytes
 * are valid UTF-8, else windows-1252 (the standard's default for unlabelled pages). */
void alm_text_sniff_html_charset(const char *s, size_t n, char *out, size_t outn);
