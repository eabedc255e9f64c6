/* SPDX-License-Identifier: Apache-2.0 */
/* Hybrid search's pure parts: reciprocal rank fusion of the keyword and vector lists, and
 * the HTML of a snippet. */
#include "unit.h"
#include "search.h"

#include <math.h>
#include <stdlib.h>

/* The score of rank r (1-based) in one list, k = 60. */
static double rr(int r)
{
    return 1.0 / (60.0 + r);
}

static void assert_score(double got, double want)
{
    assert_true(fabs(got - want) < 1e-12);
}

static void empty_lists(void **state)
{
    size_t order[1];
    double score[1];
    (void)state;
    assert_int_equal(alm_search_rrf(NULL, 0, NULL, 0, order, score), 0);
}

/* One list alone keeps its order; the other's indices start after the first list's. */
static void single_lists(void **state)
{
    const struct alm_search_key a[] = {{5, 0}, {3, 2}, {9, 1}};
    size_t order[3];
    double score[3];
    (void)state;

    assert_int_equal(alm_search_rrf(a, 3, NULL, 0, order, score), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(order[i], i);
        assert_score(score[i], rr((int)i + 1));
    }
    assert_int_equal(alm_search_rrf(NULL, 0, a, 3, order, score), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(order[i], i); /* n_a is 0: b's indices start at 0 */
        assert_score(score[i], rr((int)i + 1));
    }
}

/* A chunk in both lists appears once, as the keyword list's, with both contributions;
 * equal scores keep the keyword list's order, then the vector list's. */
static void shared_keys_fuse(void **state)
{
    const struct alm_search_key a[] = {{1, 0}, {1, 1}, {2, 0}}; /* A B C */
    const struct alm_search_key b[] = {{2, 0}, {4, 7}, {1, 0}}; /* C D A */
    size_t order[6];
    double score[6];
    (void)state;

    assert_int_equal(alm_search_rrf(a, 3, b, 3, order, score), 4);
    assert_int_equal(order[0], 0); /* A: 1st and 3rd */
    assert_score(score[0], rr(1) + rr(3));
    assert_int_equal(order[1], 2); /* C: 3rd and 1st, a tie with A */
    assert_score(score[1], rr(3) + rr(1));
    assert_int_equal(order[2], 1); /* B: 2nd in keywords only */
    assert_score(score[2], rr(2));
    assert_int_equal(order[3], 3 + 1); /* D: 2nd in vectors only, b[1] */
    assert_score(score[3], rr(2));
}

/* Agreement beats one list's favourite: 2nd in both outranks 1st in one. A key is the
 * document and the chunk: the same document's other chunk is another key. */
static void agreement_wins(void **state)
{
    const struct alm_search_key a[] = {{10, 0}, {11, 0}};
    const struct alm_search_key b[] = {{10, 1}, {11, 0}};
    size_t order[4];
    double score[4];
    (void)state;

    assert_int_equal(alm_search_rrf(a, 2, b, 2, order, score), 3);
    assert_int_equal(order[0], 1);
    assert_score(score[0], 2 * rr(2));
    assert_int_equal(order[1], 0);
    assert_int_equal(order[2], 2 + 0);
    assert_score(score[1], score[2]);
}

/* Disjoint lists of the size a search fuses interleave, keyword first at each rank, and
 * the scores never rise. */
static void disjoint_lists_interleave(void **state)
{
    enum { N = 150 };
    struct alm_search_key a[N], b[N];
    size_t order[2 * N];
    double score[2 * N];
    (void)state;

    for (int i = 0; i < N; i++) {
        a[i] = (struct alm_search_key){i + 1, 0};
        b[i] = (struct alm_search_key){i + 1, 1};
    }
    assert_int_equal(alm_search_rrf(a, N, b, N, order, score), 2 * N);
    for (size_t i = 0; i < 2 * N; i++) {
        assert_int_equal(order[i], i % 2 ? N + i / 2 : i / 2);
        assert_score(score[i], rr((int)(i / 2) + 1));
        if (i > 0)
            assert_true(score[i] <= score[i - 1]);
    }
}

static void snippet_html(void **state)
{
    char *s;
    (void)state;

    s = alm_search_snippet_html("a <b> & \"c\" 'd' \x02match\x03 end");
    assert_string_equal(s, "a &lt;b&gt; &amp; &quot;c&quot; &#39;d&#39; <mark>match</mark> end");
    free(s);
    s = alm_search_snippet_html("");
    assert_string_equal(s, "");
    free(s);
    /* markup inside a match is escaped too; other bytes (UTF-8) pass as they are */
    s = alm_search_snippet_html("\x02<i>\xc3\xa9t\xc3\xa9</i>\x03 ... \x02x\x03");
    assert_string_equal(s, "<mark>&lt;i&gt;\xc3\xa9t\xc3\xa9&lt;/i&gt;</mark> ... <mark>x</mark>");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_lists),
        cmocka_unit_test(single_lists),
        cmocka_unit_test(shared_keys_fuse),
        cmocka_unit_test(agreement_wins),
        cmocka_unit_test(disjoint_lists_interleave),
        cmocka_unit_test(snippet_html),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
