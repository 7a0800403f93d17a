/* PSI: line parsing, the unprivileged window rule, and trigger registration on
 * this machine's /proc/pressure/memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "skip_because.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "memward/linux/psi.h"

static void test_parse(void **state) {
        (void) state;
        const char *t = "some avg10=97.12 avg60=31.05 avg300=7.44 total=1843920\n"
                        "full avg10=95.50 avg60=30.10 avg300=7.01 total=1790011\n";
        struct psi_stats s;
        assert_int_equal(psi_parse(t, strlen(t), &s), 0);
        assert_true(s.some.avg10 > 97.11 && s.some.avg10 < 97.13);
        assert_true(s.some.total == 1843920);
        assert_true(s.has_full);
        assert_true(s.full.avg300 > 7.0 && s.full.avg300 < 7.02);
}

static void test_parse_some_only(void **state) {
        (void) state;
        const char *t = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
        struct psi_stats s;
        assert_int_equal(psi_parse(t, strlen(t), &s), 0);
        assert_false(s.has_full);
}

static void test_parse_garbage(void **state) {
        (void) state;
        struct psi_stats s;
        const char *bad[] = {
                "",
                "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
                "some avg10=0.00 avg60=0.00 avg300=0.00\n",
                "some avg10=x avg60=0.00 avg300=0.00 total=0\n",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=0 extra\n",
                "some avg10=120.00 avg60=0.00 avg300=0.00 total=0\n",
                "some avg10=-1.00 avg60=0.00 avg300=0.00 total=0\n",
                "hello\n",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                assert_int_equal(psi_parse(bad[i], strlen(bad[i]), &s), -EBADMSG);
}

static void test_round_window(void **state) {
        (void) state;
        const usec_t s = USEC_PER_SEC, ms = USEC_PER_MSEC;
        assert_true(psi_round_window_unprivileged(500 * ms) == 2 * s);
        assert_true(psi_round_window_unprivileged(1 * s) == 2 * s);
        assert_true(psi_round_window_unprivileged(2 * s) == 2 * s);
        assert_true(psi_round_window_unprivileged(2 * s + 1) == 4 * s);
        assert_true(psi_round_window_unprivileged(5 * s) == 6 * s);
        assert_true(psi_round_window_unprivileged(10 * s) == 10 * s);
        assert_true(psi_round_window_unprivileged(60 * s) == 10 * s);
}

/* The rounded window keeps the stall's share of time: 15 % stays 15 %. */
static void test_scale_stall(void **state) {
        (void) state;
        const usec_t s = USEC_PER_SEC, ms = USEC_PER_MSEC;
        assert_true(psi_scale_stall(150 * ms, 1 * s, 2 * s) == 300 * ms);
        assert_true(psi_scale_stall(400 * ms, 500 * ms, 2 * s) == 1600 * ms);
        assert_true(psi_scale_stall(500 * ms, 2 * s, 2 * s) == 500 * ms);
        assert_true(psi_scale_stall(1 * s, 1 * s, 2 * s) == 2 * s);            /* 100 % stays whole */
        assert_true(psi_scale_stall(1, 3 * s, 4 * s) == 2);                     /* rounded up, never 0 */
        assert_true(psi_scale_stall(9 * s, 9 * s, 10 * s) == 10 * s);
}

static void test_format(void **state) {
        (void) state;
        char buf[64];
        assert_int_equal(psi_trigger_format(PSI_SOME, 150000, 1000000, buf, sizeof buf), 19);
        assert_string_equal(buf, "some 150000 1000000");
        assert_true(psi_trigger_format(PSI_FULL, 50000, 2000000, buf, sizeof buf) > 0);
        assert_string_equal(buf, "full 50000 2000000");
        assert_int_equal(psi_trigger_format(PSI_FULL, 50000, 2000000, buf, 8), -ENOBUFS);
}

static void test_trigger_on_this_machine(void **state) {
        (void) state;
        usec_t used = 0, stall = 0;
        if (access("/proc/pressure/memory", W_OK) < 0) {
                skip_because("/proc/pressure/memory is not writable (no PSI, or not root)");
                return;
        }
        int fd = psi_trigger_open("/proc/pressure/memory", PSI_SOME, 150 * USEC_PER_MSEC, USEC_PER_SEC, &stall,
                                  &used);
        assert_true(fd >= 0);
        /* Either privileged (1 s accepted) or rounded to the 2 s the kernel allows,
         * with the stall scaled to keep 15 %. */
        assert_true((used == USEC_PER_SEC && stall == 150 * USEC_PER_MSEC) ||
                    (used == 2 * USEC_PER_SEC && stall == 300 * USEC_PER_MSEC));
        close(fd);
        assert_int_equal(psi_trigger_open("/nonexistent/memory.pressure", PSI_SOME, 1, USEC_PER_SEC, &stall, &used),
                         -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_parse_some_only),
                cmocka_unit_test(test_parse_garbage),
                cmocka_unit_test(test_round_window),
                cmocka_unit_test(test_scale_stall),
                cmocka_unit_test(test_format),
                cmocka_unit_test(test_trigger_on_this_machine),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
