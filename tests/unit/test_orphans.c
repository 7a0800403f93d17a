/* The orphan rule, the set of the killed, and a sweep over real children. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memward/supervisor/orphans.h"

static void test_judge(void **state) {
        (void) state;
        /* A worker or template is no orphan while memward runs. */
        assert_int_equal(orphan_judge(true, 0, false, false), ORPHAN_OURS);
        /* In a live worker's process group: its worker takes it along. */
        assert_int_equal(orphan_judge(false, 100, true, false), ORPHAN_KEEP);
        /* Left its worker's group (setsid), or its worker is gone. */
        assert_int_equal(orphan_judge(false, 200, false, false), ORPHAN_KILL);
        /* Gone while we looked. */
        assert_int_equal(orphan_judge(false, -1, false, false), ORPHAN_KEEP);
        /* At exit everything goes. */
        assert_int_equal(orphan_judge(false, 100, true, true), ORPHAN_KILL);
        assert_int_equal(orphan_judge(true, 0, false, true), ORPHAN_KILL);
}

static pid_t fork_sleeper(bool own_session) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (own_session)
                        (void) setsid();
                for (;;)
                        pause();
        }
        return pid;
}

static pid_t keep_pid;

static enum orphan_verdict classify(void *userdata, pid_t pid) {
        unsigned *asked = userdata;
        (*asked)++;
        return pid == keep_pid ? ORPHAN_KEEP : ORPHAN_KILL;
}

static void test_sweep_live(void **state) {
        (void) state;
        struct orphan_set killed = {};
        struct orphan_sweep sw;
        unsigned asked = 0;
        int status;

        pid_t victim = fork_sleeper(true);
        keep_pid = fork_sleeper(false);
        usleep(20000); /* the victim's setsid() */
        assert_int_equal(orphans_sweep("/proc", getpid(), classify, &asked, UINT_MAX, &killed, &sw), 0);
        assert_int_equal(sw.children, 2);
        assert_int_equal(sw.killed, 1);
        assert_int_equal(sw.kept, 1);
        assert_int_equal(sw.first_killed, victim);
        assert_true(orphan_set_contains(&killed, victim));
        assert_false(orphan_set_contains(&killed, keep_pid));

        /* Not reaped yet: listed again, neither asked about nor killed twice. */
        asked = 0;
        assert_int_equal(orphans_sweep("/proc", getpid(), classify, &asked, UINT_MAX, &killed, &sw), 0);
        assert_int_equal(sw.killed, 0);
        assert_int_equal(sw.dying, 1);
        assert_int_equal(asked, 1);

        assert_int_equal(waitpid(victim, &status, 0), victim);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        assert_true(orphan_set_remove(&killed, victim));
        assert_false(orphan_set_remove(&killed, victim));
        assert_int_equal(kill(keep_pid, 0), 0);
        (void) kill(keep_pid, SIGKILL);
        (void) waitpid(keep_pid, NULL, 0);
        orphan_set_free(&killed);
}

static enum orphan_verdict kill_all(void *userdata, pid_t pid) {
        (void) userdata;
        (void) pid;
        return ORPHAN_KILL;
}

/* Many at once, in batches: the set grows and stays sorted for the lookups, and those
 * of the first batch, not reaped yet, are not killed again by the second. */
static void test_sweep_many(void **state) {
        (void) state;
        enum { N = 200 };
        struct orphan_set killed = {};
        struct orphan_sweep sw;

        for (int i = 0; i < N; i++)
                (void) fork_sleeper(i % 2 == 0);
        assert_int_equal(orphans_sweep("/proc", getpid(), kill_all, NULL, 64, &killed, &sw), 0);
        assert_int_equal(sw.killed, 64);
        assert_int_equal(sw.deferred, N - 64);
        assert_int_equal(orphans_sweep("/proc", getpid(), kill_all, NULL, UINT_MAX, &killed, &sw), 0);
        assert_true(sw.killed == N - 64 && sw.deferred == 0);
        assert_true(sw.dying + sw.killed <= N && sw.dying <= 64);
        assert_int_equal(killed.n, N);
        for (size_t i = 1; i < killed.n; i++)
                assert_true(killed.pids[i - 1] < killed.pids[i]);
        for (int i = 0; i < N; i++) {
                int status;
                pid_t pid = waitpid(-1, &status, 0);
                assert_true(pid > 0 && WIFSIGNALED(status));
                assert_true(orphan_set_remove(&killed, pid));
        }
        assert_int_equal(killed.n, 0);
        orphan_set_free(&killed);
}

static void test_sweep_bad_root(void **state) {
        (void) state;
        struct orphan_set killed = {};
        struct orphan_sweep sw = { .killed = 77 };
        assert_int_equal(orphans_sweep("/nonexistent", getpid(), kill_all, NULL, UINT_MAX, &killed, &sw), -ENOENT);
        assert_int_equal(sw.killed, 77);
        orphan_set_free(&killed);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_judge),
                cmocka_unit_test(test_sweep_live),
                cmocka_unit_test(test_sweep_many),
                cmocka_unit_test(test_sweep_bad_root),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
