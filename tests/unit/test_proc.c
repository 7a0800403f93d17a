/* /proc parsing from fixture text and from a fixture tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memward/base/macro.h"
#include "memward/linux/proc.h"

/* A whole /proc/PID/stat line with the given comm, state and ppid; utime 150, stime 25,
 * starttime 8765. */
static int parse_line(const char *comm, const char *state_ppid, struct proc_stat *ret) {
        char line[512];
        snprintf(line, sizeof line,
                 "4242 (%s) %s 4242 4242 0 -1 4194560 180 0 0 0 150 25 0 0 20 0 1 0 8765 3600000 200 "
                 "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
                 comm, state_ppid);
        return proc_stat_parse(line, strlen(line), ret);
}

static void test_stat_plain(void **state) {
        (void) state;
        struct proc_stat st;
        assert_int_equal(parse_line("python3", "S 4200", &st), 0);
        assert_int_equal(st.ppid, 4200);
        assert_true(st.cpu_ticks == 175);
        assert_true(st.start_ticks == 8765);
}

static void test_stat_hostile_comm(void **state) {
        (void) state;
        struct proc_stat st;
        /* A process can name itself ") R 1 (" to fool a naive parser. */
        assert_int_equal(parse_line("evil) R 1 (", "S 12", &st), 0);
        assert_int_equal(st.ppid, 12);
        assert_int_equal(parse_line("a b c", "S 9", &st), 0);
        assert_int_equal(st.ppid, 9);
        assert_int_equal(parse_line("mem ward) x", "Z 0", &st), 0);
        assert_int_equal(st.ppid, 0);
        assert_true(st.cpu_ticks == 175);
}

static void test_stat_garbage(void **state) {
        (void) state;
        struct proc_stat st = { .ppid = -7, .cpu_ticks = 7, .start_ticks = 7 };
        static const char *const bad[] = {
                "", "no parens at all", "1 (x)", "1 (x) S", "1 (x) S 9 77",
                /* Cut before starttime: not enough fields. */
                "1 (x) S 9 1 1 0 -1 4194560 180 0 0 0 150 25 0 0 20 0 1 0",
                /* Two spaces, a word for a number, a sign, a state that is not one letter. */
                "1 (x) S  9 1 1 0 -1 4194560 180 0 0 0 150 25 0 0 20 0 1 0 8765",
                "1 (x) S abc 1 1 0 -1 4194560 180 0 0 0 150 25 0 0 20 0 1 0 8765",
                "1 (x) S 9 1 1 0 -1 4194560 180 0 0 0 -150 25 0 0 20 0 1 0 8765",
                "1 (x) SS 9 1 1 0 -1 4194560 180 0 0 0 150 25 0 0 20 0 1 0 8765",
                /* A ppid beyond PID_MAX_LIMIT, a number beyond 64 bits, ticks that overflow. */
                "1 (x) S 4194305 1 1 0 -1 4194560 180 0 0 0 150 25 0 0 20 0 1 0 8765",
                "1 (x) S 9 1 1 0 -1 4194560 180 0 0 0 150 25 0 0 20 0 1 0 99999999999999999999",
                "1 (x) S 9 1 1 0 -1 4194560 180 0 0 0 18446744073709551615 1 0 0 20 0 1 0 8765",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(proc_stat_parse(bad[i], strlen(bad[i]), &st), -EBADMSG);
                assert_int_equal(st.ppid, -7);
        }
        /* The line ends at starttime: nothing after it is needed. */
        static const char short_line[] = "1 (x) S 9 1 1 0 -1 4194560 180 0 0 0 150 25 0 0 20 0 1 0 8765";
        assert_int_equal(proc_stat_parse(short_line, strlen(short_line), &st), 0);
        assert_int_equal(st.ppid, 9);
        assert_true(st.start_ticks == 8765);
}

static void test_btime(void **state) {
        (void) state;
        uint64_t btime = 7;
        static const char pstat[] = "cpu  1 2 3\ncpu0 1 2 3\nintr 5\nctxt 9\nbtime 1699990000\nprocesses 7\n";

        assert_int_equal(proc_stat_btime_parse(pstat, strlen(pstat), &btime), 0);
        assert_true(btime == 1699990000);
        btime = 7;
        assert_int_equal(proc_stat_btime_parse("cpu 1\nbtime x\n", 14, &btime), -EBADMSG);
        assert_int_equal(proc_stat_btime_parse("cpu 1\nbtime 12x\n", 16, &btime), -EBADMSG);
        assert_int_equal(proc_stat_btime_parse("cpu 1\n", 6, &btime), -EBADMSG);
        assert_true(btime == 7);
        assert_int_equal(proc_stat_btime_parse("btime 5", 7, &btime), 0);
        assert_true(btime == 5);
}

static void test_live_self(void **state) {
        (void) state;
        pid_t p;
        struct proc_self self;

        assert_int_equal(proc_get_ppid("/proc", getpid(), &p), 0);
        assert_int_equal(p, getppid());

        assert_int_equal(proc_self_read("/proc", &self), 0);
        assert_true(self.resident > 0);
        assert_true(self.cpu_seconds >= 0);
        assert_true(self.start_time > 1e9);
        assert_int_equal(proc_self_read("/nonexistent", &self), -ENOENT);
}

static void test_status(void **state) {
        (void) state;
        struct proc_status st = { .ppid = -7 };
        const char *s = "Name:\tpython3\nUmask:\t0022\nState:\tS (sleeping)\nPPid:\t4200\nTracerPid:\t0\n"
                        "Uid:\t1000\t1001\t1002\t1003\nGid:\t5\t5\t5\t5\n";

        assert_int_equal(proc_status_parse(s, strlen(s), &st), 0);
        assert_int_equal(st.ppid, 4200);
        assert_int_equal(st.uid[0], 1000);
        assert_int_equal(st.uid[1], 1001);
        assert_int_equal(st.uid[2], 1002);
        assert_int_equal(st.uid[3], 1003);

        /* A name the kernel escapes cannot forge a line; without the lines, or with
         * malformed ones, nothing is written. */
        static const char *const bad[] = {
                "Name:\tx\\nPPid:\t1\nUid:\t0\t0\t0\t0\n",          /* no real PPid line */
                "PPid:\t4200\n",                                        /* no Uid */
                "Uid:\t0\t0\t0\t0\n",                                    /* no PPid */
                "PPid:\t4200\nUid:\t0\t0\t0\n",                         /* three uids */
                "PPid:\t4200\nUid:\t0\t0\t0\t0\t0\n",                     /* five */
                "PPid:\t-1\nUid:\t0\t0\t0\t0\n",
                "PPid:\t4194305\nUid:\t0\t0\t0\t0\n",                  /* beyond PID_MAX_LIMIT */
                "PPid:\t1\nUid:\t0\t0\t0\t4294967296\n",               /* beyond a uid_t */
                "PPid:\t\nUid:\t0\t0\t0\t0\n",
                "",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                st = (struct proc_status) { .ppid = -7 };
                if (proc_status_parse(bad[i], strlen(bad[i]), &st) != -EBADMSG)
                        fail_msg("case %zu parsed", i);
                assert_int_equal(st.ppid, -7);
        }

        assert_int_equal(proc_get_status("/proc", getpid(), &st), 0);
        assert_int_equal(st.ppid, getppid());
        assert_int_equal(st.uid[0], getuid());
        assert_int_equal(st.uid[1], geteuid());
        assert_int_equal(proc_get_status(FIXTURES_DIR "/proc", 4243, &st), 0);
        assert_int_equal(st.uid[1], 0);
        assert_int_equal(proc_get_status(FIXTURES_DIR "/proc", 999999, &st), -ESRCH);
}

static void test_fixture_tree(void **state) {
        (void) state;
        pid_t p;
        assert_int_equal(proc_get_ppid(FIXTURES_DIR "/proc", 4242, &p), 0);
        assert_int_equal(p, 4200);
        assert_int_equal(proc_get_ppid(FIXTURES_DIR "/proc", 999999, &p), -ESRCH);
}

static void test_children_parse(void **state) {
        (void) state;
        _cleanup_free_ pid_t *pids = NULL;
        pid_t *none = (pid_t *) 1;

        assert_int_equal(proc_children_parse("", 0, &none), 0);
        assert_null(none);
        assert_int_equal(proc_children_parse("12 4194304 7 ", 13, &pids), 3);
        assert_int_equal(pids[0], 12);
        assert_int_equal(pids[1], 4194304);
        assert_int_equal(pids[2], 7);
        free(TAKE_PTR(pids));
        assert_int_equal(proc_children_parse("12 \n", 4, &pids), 1);
        assert_int_equal(pids[0], 12);

        const char *bad[] = { "12  7 ", "0 ", "4194305 ", "-3 ", "12x ", " ", "\n\n" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                pid_t *untouched = (pid_t *) 1;
                assert_int_equal(proc_children_parse(bad[i], strlen(bad[i]), &untouched), -EBADMSG);
                assert_ptr_equal(untouched, (pid_t *) 1);
        }
}

/* Many children: the array grows past its first allocation. */
static void test_children_parse_many(void **state) {
        (void) state;
        char text[8 * 1000 + 1], *p = text;
        _cleanup_free_ pid_t *pids = NULL;

        for (int i = 1; i <= 1000; i++)
                p += sprintf(p, "%d ", 100000 + i);
        assert_int_equal(proc_children_parse(text, (size_t) (p - text), &pids), 1000);
        assert_int_equal(pids[999], 101000);
}

static int compare_pids(const void *a, const void *b) {
        return *(const pid_t *) a - *(const pid_t *) b;
}

static void test_list_children(void **state) {
        (void) state;
        _cleanup_free_ pid_t *pids = NULL;

        /* The children file. */
        assert_int_equal(proc_list_children(FIXTURES_DIR "/proc", 4200, &pids), 2);
        assert_int_equal(pids[0], 4242);
        assert_int_equal(pids[1], 4243);
        free(TAKE_PTR(pids));

        /* No children file: every stat is read; 4243 is init's, "self" no pid. */
        assert_int_equal(proc_list_children(FIXTURES_DIR "/proc-scan", 4200, &pids), 2);
        qsort(pids, 2, sizeof *pids, compare_pids);
        assert_int_equal(pids[0], 4242);
        assert_int_equal(pids[1], 4244);
        free(TAKE_PTR(pids));
        assert_int_equal(proc_list_children(FIXTURES_DIR "/proc-scan", 77, &pids), 0);
        assert_null(pids);
        assert_int_equal(proc_list_children("/nonexistent", 77, &pids), -ENOENT);
}

/* The live file agrees with what we forked. */
static void test_list_children_live(void **state) {
        (void) state;
        _cleanup_free_ pid_t *pids = NULL;
        pid_t child = fork();

        assert_true(child >= 0);
        if (child == 0) {
                pause();
                _exit(0);
        }
        int n = proc_list_children("/proc", getpid(), &pids);
        (void) kill(child, SIGKILL);
        (void) waitpid(child, NULL, 0);
        assert_true(n >= 1);
        bool found = false;
        for (int i = 0; i < n; i++)
                found = found || pids[i] == child;
        assert_true(found);
}

/* proc_child_exited() on a real child: running 0, stopped 0, exited 1 and still there
 * for waitpid() (WNOWAIT), reaped -ECHILD; no child of ours -ECHILD; no pid -EINVAL. */
static void test_child_exited(void **state) {
        (void) state;
        int status;
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                pause();
                _exit(0);
        }
        assert_int_equal(proc_child_exited(pid), 0);
        assert_int_equal(kill(pid, SIGSTOP), 0);
        assert_int_equal(waitpid(pid, &status, WUNTRACED), pid);
        assert_true(WIFSTOPPED(status));
        assert_int_equal(proc_child_exited(pid), 0);

        assert_int_equal(kill(pid, SIGKILL), 0);
        /* The exit is news to waitid() only once the kernel has made it a zombie: wait
         * for it without reaping, as memward never does. */
        siginfo_t info = {};
        assert_int_equal(waitid(P_PID, (id_t) pid, &info, WEXITED | WNOWAIT), 0);
        assert_int_equal(proc_child_exited(pid), 1);
        assert_int_equal(proc_child_exited(pid), 1); /* WNOWAIT: still a zombie */
        assert_int_equal(waitpid(pid, &status, WNOHANG), pid);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        assert_int_equal(proc_child_exited(pid), -ECHILD);

        assert_int_equal(proc_child_exited(getppid()), -ECHILD);
        assert_int_equal(proc_child_exited(0), -EINVAL);
        assert_int_equal(proc_child_exited(-1), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stat_plain),
                cmocka_unit_test(test_stat_hostile_comm),
                cmocka_unit_test(test_stat_garbage),
                cmocka_unit_test(test_btime),
                cmocka_unit_test(test_live_self),
                cmocka_unit_test(test_status),
                cmocka_unit_test(test_fixture_tree),
                cmocka_unit_test(test_children_parse),
                cmocka_unit_test(test_children_parse_many),
                cmocka_unit_test(test_list_children),
                cmocka_unit_test(test_list_children_live),
                cmocka_unit_test(test_child_exited),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
