/* SPDX-License-Identifier: Apache-2.0 */
/* The sandbox with real child processes: every limit at work, and what the child sees. */
#include "unit.h"
#include "clock.h"
#include "sandbox.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct alm_sandbox_limits LIM = {
    .as_bytes = 256u << 20,
    .cpu_s = 5,
    .fsize_bytes = 1u << 20,
    .nofile = 32,
    .wall_ms = 5000,
    .max_out = 1u << 20,
};

static void sh(const char *script, const char *in, const struct alm_sandbox_limits *lim,
               struct alm_sandbox_result *r)
{
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    struct alm_errbuf eb;

    assert_int_equal(alm_sandbox_run(argv, in, in ? strlen(in) : 0, lim ? lim : &LIM, r, &eb),
                     ALM_OK);
}

static void input_output_and_stderr(void **state)
{
    struct alm_sandbox_result r;

    (void)state;
    sh("cat; echo oops >&2; exit 3", "hello document", NULL, &r);
    assert_int_equal(r.exit_code, 3);
    assert_int_equal((int)r.out.len, 14);
    assert_memory_equal(r.out.data, "hello document", 14);
    assert_string_equal(r.err, "oops");
    assert_false(r.timed_out);
    alm_sandbox_result_release(&r);
}

static void stdin_is_seekable(void **state)
{
    struct alm_sandbox_result r;

    (void)state;
    /* tools such as pdfinfo seek in their input: a memfd allows it */
    sh("tail -c 3 <&0", "abcdef", NULL, &r);
    assert_int_equal(r.exit_code, 0);
    assert_memory_equal(r.out.data, "def", 3);
    alm_sandbox_result_release(&r);
}

static void empty_environment_and_no_descriptors(void **state)
{
    struct alm_sandbox_result r;

    (void)state;
    setenv("ALMANAC_JWT_SECRET", "never-in-a-child", 1);
    sh("env; ls /proc/self/fd | wc -l", NULL, NULL, &r);
    assert_int_equal(r.exit_code, 0);
    assert_null(strstr(r.out.data, "never-in-a-child"));
    assert_null(strstr(r.out.data, "ALMANAC"));
    /* 0, 1, 2 and the one ls opens to list them */
    assert_non_null(strstr(r.out.data, "\n4\n"));
    alm_sandbox_result_release(&r);
    unsetenv("ALMANAC_JWT_SECRET");
}

static void wall_clock_kills_the_group(void **state)
{
    struct alm_sandbox_limits lim = LIM;
    struct alm_sandbox_result r;
    int64_t t0 = alm_clock_ms();

    (void)state;
    lim.wall_ms = 300;
    /* a grandchild holding stdout open must not keep us waiting */
    sh("sleep 30 & sleep 30", NULL, &lim, &r);
    assert_true(r.timed_out);
    assert_int_equal(r.signal, SIGKILL);
    assert_true(alm_clock_ms() - t0 < 3000);
    alm_sandbox_result_release(&r);
}

static void stdout_cap(void **state)
{
    struct alm_sandbox_limits lim = LIM;
    struct alm_sandbox_result r;

    (void)state;
    lim.max_out = 100000;
    sh("yes", NULL, &lim, &r);
    assert_true(r.out_capped);
    assert_true(r.out.len <= lim.max_out);
    assert_int_equal(r.signal, SIGKILL);
    alm_sandbox_result_release(&r);
}

static void memory_cpu_and_file_limits(void **state)
{
    struct alm_sandbox_limits lim = LIM;
    struct alm_sandbox_result r;

    (void)state;
    /* address space: perl cannot make a 1 GiB string under a 256 MiB limit */
    sh("exec perl -e '$x = \"a\" x (1 << 30); print length $x'", NULL, NULL, &r);
    assert_true(r.exit_code != 0 || r.signal != 0);
    assert_int_equal((int)r.out.len, 0);
    alm_sandbox_result_release(&r);
    /* CPU time: a busy loop is stopped by SIGXCPU (or SIGKILL at the hard limit) */
    lim.cpu_s = 1;
    sh("while :; do :; done", NULL, &lim, &r);
    assert_true(r.signal == SIGXCPU || r.signal == SIGKILL);
    assert_false(r.timed_out);
    alm_sandbox_result_release(&r);
    /* file size: writing past RLIMIT_FSIZE fails */
    lim = LIM;
    lim.fsize_bytes = 4096;
    sh("f=$(mktemp) && head -c 100000 /dev/zero > $f; rc=$?; rm -f $f; exit $rc", NULL, &lim, &r);
    assert_true(r.exit_code != 0);
    alm_sandbox_result_release(&r);
    /* open files */
    sh("ulimit -n", NULL, NULL, &r);
    assert_string_equal(r.out.data, "32\n");
    alm_sandbox_result_release(&r);
}

static void network_where_allowed(void **state)
{
    struct alm_sandbox_result r;
    const char *what = alm_sandbox_network();

    (void)state;
    sh("cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '", NULL, NULL, &r);
    assert_int_equal(r.exit_code, 0);
    if (strncmp(what, "network namespace", 17) == 0)
        assert_string_equal(r.out.data, "lo\n"); /* no interface but loopback, which is down */
    else
        print_message("network isolation not available here: %s\n", what);
    alm_sandbox_result_release(&r);
}

static void missing_program(void **state)
{
    const char *argv[] = {"/nonexistent/tool", NULL};
    struct alm_sandbox_result r;
    struct alm_errbuf eb;

    (void)state;
    assert_int_equal(alm_sandbox_run(argv, "", 0, &LIM, &r, &eb), ALM_OK);
    assert_int_equal(r.exit_code, 127);
    alm_sandbox_result_release(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(input_output_and_stderr),
        cmocka_unit_test(stdin_is_seekable),
        cmocka_unit_test(empty_environment_and_no_descriptors),
        cmocka_unit_test(wall_clock_kills_the_group),
        cmocka_unit_test(stdout_cap),
        cmocka_unit_test(memory_cpu_and_file_limits),
        cmocka_unit_test(network_where_allowed),
        cmocka_unit_test(missing_program),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
