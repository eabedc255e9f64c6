/* SPDX-License-Identifier: Apache-2.0 */
/* The pool's waiters that hold no thread: hand-over in order, expiry, a connection handed
 * to a waiter that left, and a freed slot connected within the waiter's time left. The
 * connections are plain counters: the pool only opens, closes and asks about them. */
#include "unit.h"
#include "clock.h"
#include "err.h"
#include "pool.h"

#include <stdlib.h>

struct factory {
    int connects, closes, last_timeout_ms;
    bool refuse;
};

struct fake_conn {
    bool usable;
};

static void *fake_connect(void *ctx, int timeout_ms, struct alm_errbuf *eb)
{
    struct factory *f = ctx;
    struct fake_conn *c;

    f->last_timeout_ms = timeout_ms;
    if (f->refuse) {
        alm_fail(eb, ALM_ERR_UNAVAILABLE, "refused");
        return NULL;
    }
    f->connects++;
    c = calloc(1, sizeof(*c));
    c->usable = true;
    return c;
}

static void fake_close(void *conn)
{
    free(conn);
}

static bool fake_usable(void *conn)
{
    return ((struct fake_conn *)conn)->usable;
}

static const struct alm_pool_ops ops = {fake_connect, fake_close, fake_usable};

/* A waiter that counts how often it was parked and woken. */
struct waiter {
    struct alm_pool_wait w;
    int parked, woken;
};

static void park(void *arg)
{
    ((struct waiter *)arg)->parked++;
}

static void wake(void *arg)
{
    ((struct waiter *)arg)->woken++;
}

static void waiter_init(struct waiter *x, int64_t wait_ms)
{
    *x = (struct waiter){0};
    x->w.deadline_ms = alm_clock_ms() + wait_ms;
    x->w.park = park;
    x->w.wake = wake;
    x->w.arg = x;
}

static enum alm_pool_take take(struct alm_pool *p, struct waiter *x, void **conn)
{
    struct alm_errbuf eb = {{0}};
    return alm_pool_take(p, &x->w, conn, &eb);
}

static void oldest_waiter_first(void **state)
{
    struct factory f = {0};
    struct alm_pool *p = alm_pool_new(&ops, &f, 1, 60000);
    struct waiter a, b, c;
    void *conn, *got;
    (void)state;

    waiter_init(&a, 5000);
    waiter_init(&b, 5000);
    waiter_init(&c, 5000);
    assert_int_equal(take(p, &a, &conn), ALM_POOL_READY);
    assert_int_equal(take(p, &b, &got), ALM_POOL_WAITING);
    assert_int_equal(take(p, &c, &got), ALM_POOL_WAITING);
    assert_int_equal(b.parked + c.parked, 2);
    alm_pool_put(p, conn);
    assert_int_equal(b.woken, 1);
    assert_int_equal(c.woken, 0);
    assert_int_equal(take(p, &b, &got), ALM_POOL_READY);
    assert_ptr_equal(got, conn);
    alm_pool_put(p, got);
    assert_int_equal(c.woken, 1);
    assert_int_equal(take(p, &c, &got), ALM_POOL_READY);
    alm_pool_put(p, got);
    assert_int_equal(f.connects, 1);
    alm_pool_wait_end(p, &a.w);
    alm_pool_wait_end(p, &b.w);
    alm_pool_wait_end(p, &c.w);
    alm_pool_free(p);
}

static void waiters_expire_at_their_deadline(void **state)
{
    struct factory f = {0};
    struct alm_pool *p = alm_pool_new(&ops, &f, 1, 60000);
    struct waiter a, b, late, nowait;
    struct alm_errbuf eb = {{0}};
    void *conn, *got;
    (void)state;

    waiter_init(&a, 5000);
    waiter_init(&b, 30);
    waiter_init(&late, -1);
    waiter_init(&nowait, 5000);
    nowait.w.park = NULL;
    assert_int_equal(take(p, &a, &conn), ALM_POOL_READY);
    assert_int_equal(take(p, &nowait, &got), ALM_POOL_BUSY);
    assert_int_equal(take(p, &late, &got), ALM_POOL_FAILED); /* past its deadline already */
    assert_int_equal(late.parked, 0);
    assert_int_equal(take(p, &b, &got), ALM_POOL_WAITING);
    alm_pool_expire(p, false);
    assert_int_equal(b.woken, 0);
    alm_clock_sleep_ms(40);
    alm_pool_expire(p, false);
    assert_int_equal(b.woken, 1);
    assert_int_equal(alm_pool_take(p, &b.w, &got, &eb), ALM_POOL_FAILED);
    assert_string_equal(eb.msg, "all 1 connections busy for 60000 ms");
    /* Shutdown wakes every waiter, deadline or not, and queues none after. */
    waiter_init(&b, 60000);
    assert_int_equal(take(p, &b, &got), ALM_POOL_WAITING);
    alm_pool_expire(p, true);
    assert_int_equal(b.woken, 1);
    assert_int_equal(take(p, &b, &got), ALM_POOL_FAILED);
    waiter_init(&b, 60000);
    assert_int_equal(take(p, &b, &got), ALM_POOL_FAILED);
    assert_int_equal(b.parked, 0);
    alm_pool_put(p, conn);
    alm_pool_free(p);
}

static void a_connection_handed_to_a_waiter_that_left_goes_back(void **state)
{
    struct factory f = {0};
    struct alm_pool *p = alm_pool_new(&ops, &f, 1, 60000);
    struct waiter a, b, c;
    void *conn, *got;
    (void)state;

    waiter_init(&a, 5000);
    waiter_init(&b, 5000);
    waiter_init(&c, 5000);
    assert_int_equal(take(p, &a, &conn), ALM_POOL_READY);
    assert_int_equal(take(p, &b, &got), ALM_POOL_WAITING);
    alm_pool_put(p, conn);
    assert_int_equal(b.woken, 1);
    alm_pool_wait_end(p, &b.w); /* its request was closed before it ran again */
    assert_int_equal(take(p, &c, &got), ALM_POOL_READY);
    assert_ptr_equal(got, conn);
    /* A queued waiter that leaves is out of the queue: the next put finds none. */
    waiter_init(&b, 5000);
    assert_int_equal(take(p, &b, &conn), ALM_POOL_WAITING);
    alm_pool_wait_end(p, &b.w);
    alm_pool_put(p, got);
    assert_int_equal(b.woken, 0);
    assert_int_equal(take(p, &a, &got), ALM_POOL_READY);
    alm_pool_put(p, got);
    assert_int_equal(f.connects, 1);
    alm_pool_free(p);
}

static void a_freed_slot_connects_within_the_time_left(void **state)
{
    struct factory f = {0};
    struct alm_pool *p = alm_pool_new(&ops, &f, 1, 60000);
    struct waiter a, b, c, gone;
    void *conn, *got;
    (void)state;

    waiter_init(&a, 5000);
    waiter_init(&b, 3000);
    waiter_init(&c, 5000);
    waiter_init(&gone, 20);
    assert_int_equal(take(p, &a, &conn), ALM_POOL_READY);
    assert_int_equal(take(p, &gone, &got), ALM_POOL_WAITING);
    assert_int_equal(take(p, &b, &got), ALM_POOL_WAITING);
    assert_int_equal(take(p, &c, &got), ALM_POOL_WAITING);
    alm_clock_sleep_ms(30);
    ((struct fake_conn *)conn)->usable = false; /* broken: closed, its slot freed */
    alm_pool_put(p, conn);
    assert_int_equal(gone.woken, 1); /* past its deadline: expired, not handed the slot */
    assert_int_equal(take(p, &gone, &got), ALM_POOL_FAILED);
    assert_int_equal(b.woken, 1);
    f.refuse = true;
    assert_int_equal(take(p, &b, &got), ALM_POOL_FAILED);
    assert_true(f.last_timeout_ms > 2000 && f.last_timeout_ms <= 3000);
    assert_int_equal(c.woken, 1); /* the failed connect's slot went on */
    f.refuse = false;
    assert_int_equal(take(p, &c, &got), ALM_POOL_READY);
    assert_true(f.last_timeout_ms > 4000 && f.last_timeout_ms <= 5000);
    alm_pool_put(p, got);
    alm_pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(oldest_waiter_first),
        cmocka_unit_test(waiters_expire_at_their_deadline),
        cmocka_unit_test(a_connection_handed_to_a_waiter_that_left_goes_back),
        cmocka_unit_test(a_freed_slot_connects_within_the_time_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
