/* template.c's pure parts: the ring of reaped pids and the check of a SPAWNED's PID
 * and of a PLACE's PID (docs/fork-server.md §3), against the fixture /proc tree
 * (tests/fixtures/proc: pid 4242, whose parent is the template 4200, both nobody; 4243,
 * 4200's child with euid 0; 4244, init's child). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "memward/base/macro.h"
#include "memward/supervisor/template.h"

#define PROC FIXTURES_DIR "/proc"

static void test_ring(void **state) {
        (void) state;
        struct reaped_ring r = {};
        int status = -1;

        assert_false(reaped_ring_take(&r, 10, &status));
        reaped_ring_push(&r, 10, 0x0700);
        reaped_ring_push(&r, 0, 1);    /* not a pid: ignored */
        reaped_ring_push(&r, -3, 1);
        assert_true(reaped_ring_take(&r, 10, &status));
        assert_int_equal(status, 0x0700);
        /* One exit is adopted once. */
        assert_false(reaped_ring_take(&r, 10, &status));
        assert_false(reaped_ring_take(NULL, 10, &status));
        assert_false(reaped_ring_take(&r, 0, NULL));

        /* Bounded: the oldest are forgotten, the newest TEMPLATE_REAPED_MAX kept. */
        for (int pid = 100; pid < 100 + (int) TEMPLATE_REAPED_MAX + 5; pid++)
                reaped_ring_push(&r, pid, pid);
        for (int pid = 100; pid < 105; pid++)
                assert_false(reaped_ring_take(&r, pid, NULL));
        for (int pid = 105; pid < 100 + (int) TEMPLATE_REAPED_MAX + 5; pid++) {
                assert_true(reaped_ring_take(&r, pid, &status));
                assert_int_equal(status, pid);
        }
}

static void test_check_pid(void **state) {
        (void) state;
        struct reaped_ring r = {};
        char detail[TEMPLATE_DETAIL_MAX];
        int status = 0;

        /* Its parent is memward, the template, or the sender (the intermediate). */
        assert_int_equal(template_check_pid(PROC, 4242, 4200, 1, 0, &r, &status, detail, sizeof detail), 0);
        assert_int_equal(template_check_pid(PROC, 4242, 1, 4200, 0, &r, &status, detail, sizeof detail), 0);
        assert_int_equal(template_check_pid(PROC, 4242, 1, 2, 4200, &r, &status, detail, sizeof detail), 0);

        /* Anyone else's child is not the template's to name. */
        assert_int_equal(template_check_pid(PROC, 4242, 1, 2, 3, &r, &status, detail, sizeof detail), -EPERM);
        assert_non_null(strstr(detail, "parent 4200"));
        /* No sender known (no credentials): 0 is no parent. */
        assert_int_equal(template_check_pid(PROC, 4242, 1, 2, 0, NULL, &status, detail, sizeof detail), -EPERM);

        /* No such process and not reaped by memward: a made-up pid. */
        assert_int_equal(template_check_pid(PROC, 999999, 1, 2, 3, &r, &status, detail, sizeof detail), -EPERM);
        assert_non_null(strstr(detail, "no such process"));

        /* Reaped by memward since the SPAWN: a worker that exited at once, whatever /proc says. */
        reaped_ring_push(&r, 999999, 0x0100);
        assert_int_equal(template_check_pid(PROC, 999999, 1, 2, 3, &r, &status, detail, sizeof detail), 1);
        assert_int_equal(status, 0x0100);
        assert_int_equal(template_check_pid(PROC, 999999, 1, 2, 3, &r, &status, detail, sizeof detail), -EPERM);
}

/* A PLACE's PID: the template's own child (PPid), of the template's user (all four uids). */
static void test_check_place_pid(void **state) {
        (void) state;
        char detail[TEMPLATE_DETAIL_MAX] = "";

        /* 4242: a child of the template 4200, both nobody. */
        assert_int_equal(template_check_place_pid(PROC, 4242, 4200, detail, sizeof detail), 0);

        /* Someone else's child, or the template's child from another template's view. */
        assert_int_equal(template_check_place_pid(PROC, 4244, 4200, detail, sizeof detail), -EPERM);
        assert_non_null(strstr(detail, "its parent 1 is not the template (4200)"));
        assert_int_equal(template_check_place_pid(PROC, 4242, 4100, detail, sizeof detail), -EPERM);

        /* The template's child that became root through a set-user-ID program. */
        assert_int_equal(template_check_place_pid(PROC, 4243, 4200, detail, sizeof detail), -EPERM);
        assert_non_null(strstr(detail, "runs as uid 65534/0/0/0, the template (4200) as 65534/65534/65534/65534"));

        /* Gone: not the template's fault, the placement fails. */
        assert_int_equal(template_check_place_pid(PROC, 999999, 4200, detail, sizeof detail), -ESRCH);
        assert_non_null(strstr(detail, "no such process"));
        /* The template's own status missing: not a verdict on the child. */
        assert_int_equal(template_check_place_pid(PROC, 4244, 1, detail, sizeof detail), -EIO);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ring),
                cmocka_unit_test(test_check_pid),
                cmocka_unit_test(test_check_place_pid),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
