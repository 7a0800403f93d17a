/* /proc parsing from fixture text and from a fixture tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "memward/linux/proc.h"

static int ppid_of(const char *text, pid_t *ret) {
        return proc_stat_parse_ppid(text, strlen(text), ret);
}

static void test_stat_plain(void **state) {
        (void) state;
        pid_t p;
        assert_int_equal(ppid_of("4242 (python3) S 4200 4242 4200 0 -1 4194560 1034 0 0 0", &p), 0);
        assert_int_equal(p, 4200);
}

static void test_stat_hostile_comm(void **state) {
        (void) state;
        pid_t p;
        /* A process can name itself ") R 1 (" to fool a naive parser. */
        assert_int_equal(ppid_of("77 (evil) R 1 () S 12 77 77 0", &p), 0);
        assert_int_equal(p, 12);
        assert_int_equal(ppid_of("77 (a b c) S 9 77", &p), 0);
        assert_int_equal(p, 9);
}

static void test_stat_garbage(void **state) {
        (void) state;
        pid_t p;
        assert_int_equal(ppid_of("", &p), -EBADMSG);
        assert_int_equal(ppid_of("no parens at all", &p), -EBADMSG);
        assert_int_equal(ppid_of("1 (x)", &p), -EBADMSG);
        assert_int_equal(ppid_of("1 (x) S", &p), -EBADMSG);
        assert_int_equal(ppid_of("1 (x) S abc 1", &p), -EBADMSG);
        assert_int_equal(ppid_of("1 (x) S 99999999999999 1", &p), -EBADMSG);
}

static void test_live_self(void **state) {
        (void) state;
        pid_t p;
        assert_int_equal(proc_get_ppid("/proc", getpid(), &p), 0);
        assert_int_equal(p, getppid());
}

static void test_fixture_tree(void **state) {
        (void) state;
        pid_t p;
        assert_int_equal(proc_get_ppid(FIXTURES_DIR "/proc", 4242, &p), 0);
        assert_int_equal(p, 4200);
        assert_int_equal(proc_get_ppid(FIXTURES_DIR "/proc", 999999, &p), -ESRCH);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stat_plain),
                cmocka_unit_test(test_stat_hostile_comm),
                cmocka_unit_test(test_stat_garbage),
                cmocka_unit_test(test_live_self),
                cmocka_unit_test(test_fixture_tree),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
