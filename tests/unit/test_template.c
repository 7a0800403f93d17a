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
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
        struct proc_status child = {};

        /* 4242: a child of the template 4200, both nobody. */
        assert_int_equal(template_check_place_pid(PROC, 4242, 7777, 4200, &child, detail, sizeof detail), 0);
        assert_int_equal(child.ppid, 4200);
        assert_int_equal(child.uid[1], 65534);

        /* Someone else's child, or the template's child from another template's view. */
        assert_int_equal(template_check_place_pid(PROC, 4244, 7777, 4200, NULL, detail, sizeof detail), -EPERM);
        assert_non_null(strstr(detail, "its parent 1 is not the template (4200)"));
        assert_int_equal(template_check_place_pid(PROC, 4242, 7777, 4100, NULL, detail, sizeof detail), -EPERM);

        /* The template's child that became root through a set-user-ID program. */
        assert_int_equal(template_check_place_pid(PROC, 4243, 7777, 4200, NULL, detail, sizeof detail), -EPERM);
        assert_non_null(strstr(detail, "runs as uid 65534/0/0/0, the template (4200) as 65534/65534/65534/65534"));

        /* Gone: not the template's fault, the placement fails. */
        assert_int_equal(template_check_place_pid(PROC, 999999, 7777, 4200, NULL, detail, sizeof detail), -ESRCH);
        assert_non_null(strstr(detail, "no such process"));
        /* The template's own status missing: not a verdict on the child. */
        assert_int_equal(template_check_place_pid(PROC, 4244, 7777, 1, NULL, detail, sizeof detail), -EIO);

        /* memward's own child (4244's parent is 1, memward here): a worker, or the
         * template's child re-parented after the template died; the caller tells which
         * by the template's exit. Never one to move. */
        assert_int_equal(template_check_place_pid(PROC, 4244, 1, 4200, NULL, detail, sizeof detail), -EPERM);
        assert_non_null(strstr(detail, "its parent 1 is memward, which is not the template (4200)"));
}

/* How a placer's exit is read: the errno of its write, or the check after the move that
 * failed (the leaf must then not be killed blindly). */
static void test_placer_result(void **state) {
        (void) state;
        bool lost = true;

        assert_int_equal(template_placer_result(W_EXITCODE(0, 0), &lost), 0);
        assert_false(lost);
        assert_int_equal(template_placer_result(W_EXITCODE(ESRCH, 0), &lost), -ESRCH);
        assert_false(lost);
        assert_int_equal(template_placer_result(W_EXITCODE(EACCES, 0), &lost), -EACCES);
        assert_int_equal(template_placer_result(W_EXITCODE(TEMPLATE_PLACER_EXIT_GONE, 0), &lost), -ESTALE);
        assert_true(lost);
        assert_int_equal(template_placer_result(W_EXITCODE(TEMPLATE_PLACER_EXIT_CHANGED, 0), &lost), -ESTALE);
        assert_true(lost);
        assert_int_equal(template_placer_result(W_EXITCODE(127, 0), &lost), -EIO);
        assert_false(lost);
        assert_int_equal(template_placer_result(W_EXITCODE(0, SIGKILL), &lost), -EIO);
        assert_false(lost);
}

static void test_helper_pids(void **state) {
        (void) state;
        struct helper_pids h = {};

        assert_false(helper_pids_contains(&h, 100));
        for (pid_t p = 100; p < 100 + (pid_t) TEMPLATE_HELPERS_MAX; p++)
                assert_int_equal(helper_pids_add(&h, p), 0);
        assert_int_equal(helper_pids_add(&h, 999), -ENOSPC);
        assert_false(helper_pids_contains(&h, 999));
        assert_true(helper_pids_contains(&h, 105));
        assert_true(helper_pids_remove(&h, 105));
        assert_false(helper_pids_remove(&h, 105));
        assert_false(helper_pids_contains(&h, 105));
        assert_int_equal(helper_pids_add(&h, 999), 0);
        assert_true(helper_pids_contains(&h, 999));
        assert_false(helper_pids_contains(NULL, 999));
        assert_false(helper_pids_contains(&h, 0));
}

/* The pidfd that pins a PLACE's process, on a real child: alive, then dead but not
 * reaped (the number still its: exited already), then reaped (no such process). And
 * template_child_has_exited() sees the zombie without reaping it. */
static void test_pidfd_pins_the_process(void **state) {
        (void) state;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                pause();
                _exit(0);
        }
        int fd = proc_pidfd_open(pid);
        assert_true(fd >= 0);
        assert_int_equal(proc_pidfd_exited(fd), 0);
        assert_false(template_child_has_exited(pid));

        assert_int_equal(kill(pid, SIGKILL), 0);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        assert_int_equal(poll(&p, 1, 10000), 1);
        assert_int_equal(proc_pidfd_exited(fd), 1);
        assert_true(template_child_has_exited(pid));
        assert_true(template_child_has_exited(pid)); /* WNOWAIT: still there */
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(proc_pidfd_exited(fd), 1);
        close(fd);
        assert_int_equal(proc_pidfd_open(pid), -ESRCH);
        assert_true(template_child_has_exited(pid)); /* reaped: no child of ours */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ring),
                cmocka_unit_test(test_check_pid),
                cmocka_unit_test(test_check_place_pid),
                cmocka_unit_test(test_placer_result),
                cmocka_unit_test(test_helper_pids),
                cmocka_unit_test(test_pidfd_pins_the_process),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
