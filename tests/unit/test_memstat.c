/* Kernel memory files parsed from fixture text captured from real kernels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memward/linux/memstat.h"

static char *slurp(const char *name, size_t *ret_len) {
        char path[512];
        snprintf(path, sizeof path, "%s/cgroup/%s", FIXTURES_DIR, name);
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        char *buf = calloc(1, 65536);
        *ret_len = fread(buf, 1, 65535, f);
        fclose(f);
        return buf;
}

static void test_memory_stat_6_1(void **state) {
        (void) state;
        size_t n;
        char *t = slurp("memory.stat", &n);
        struct memory_stat s;
        assert_int_equal(memory_stat_parse(t, n, &s), 0);
        assert_true(s.anon == 209715200);
        assert_true(s.file == 4194304);
        assert_true(s.kernel == 1523712);
        assert_true(s.shmem == 12288);
        assert_true(s.sock == 8192);
        free(t);
}

static void test_memory_stat_old_kernel_sums_kernel(void **state) {
        (void) state;
        size_t n;
        char *t = slurp("memory.stat.5.10", &n);
        struct memory_stat s;
        assert_int_equal(memory_stat_parse(t, n, &s), 0);
        assert_true(s.anon == 1048576);
        assert_true(s.kernel == 16384 + 32768 + 65536);
        free(t);
}

static void test_memory_stat_garbage(void **state) {
        (void) state;
        struct memory_stat s;
        assert_int_equal(memory_stat_parse("", 0, &s), -EBADMSG);
        assert_int_equal(memory_stat_parse("file 12\n", 8, &s), -EBADMSG);
        const char *t = "anon x\nanon\n\n\n anon 5\nanon 99999999999999999999999\n";
        assert_int_equal(memory_stat_parse(t, strlen(t), &s), -EBADMSG);
        t = "anon 7";   /* no trailing newline */
        assert_int_equal(memory_stat_parse(t, strlen(t), &s), 0);
        assert_true(s.anon == 7);
}

static void test_memory_events(void **state) {
        (void) state;
        size_t n;
        char *t = slurp("memory.events", &n);
        struct memory_events e;
        assert_int_equal(memory_events_parse(t, n, &e), 0);
        assert_true(e.high == 17);
        assert_true(e.max == 3);
        assert_true(e.oom == 1);
        assert_true(e.oom_kill == 1);
        assert_true(e.oom_group_kill == 0);
        assert_int_equal(memory_events_parse("low 1\n", 6, &e), -EBADMSG);
        free(t);
}

static void test_smaps_rollup(void **state) {
        (void) state;
        size_t n;
        char *t = slurp("smaps_rollup", &n);
        struct smaps_rollup r;
        assert_int_equal(smaps_rollup_parse(t, n, &r), 0);
        assert_true(r.rss == 214532ULL * 1024);
        assert_true(r.pss == 210112ULL * 1024);
        assert_true(r.anonymous == 204876ULL * 1024);
        assert_true(r.has_pss_anon);
        assert_true(r.pss_anon == 204876ULL * 1024);
        assert_true(r.has_private);
        assert_true(r.private_bytes == (1024ULL + 209088ULL) * 1024);
        /* Without Private_Clean/Private_Dirty (only one of them): no USS, not half of one. */
        const char *partial = "Rss: 8 kB\nPss: 4 kB\nAnonymous: 4 kB\nPrivate_Dirty: 4 kB\n";
        assert_int_equal(smaps_rollup_parse(partial, strlen(partial), &r), 0);
        assert_false(r.has_private);
        assert_true(r.private_bytes == 0);
        assert_false(r.has_pss_anon);           /* before 5.3 */
        /* Pss_Anon must not be taken for Pss, nor a truncated file accepted. */
        assert_int_equal(smaps_rollup_parse(t, 120, &r), -EBADMSG);
        free(t);
}

static void test_statm(void **state) {
        (void) state;
        uint64_t res, shared;
        const char *t = "61234 51200 1200 700 0 50000 0\n";
        assert_int_equal(statm_parse(t, strlen(t), 4096, &res, &shared), 0);
        assert_true(res == 51200ULL * 4096);
        assert_true(shared == 1200ULL * 4096);
        assert_int_equal(statm_parse("1 2", 3, 4096, &res, &shared), -EBADMSG);
        assert_int_equal(statm_parse("1 2 3", 5, 4096, &res, &shared), -EBADMSG); /* shared > resident */
        assert_int_equal(statm_parse("a b c", 5, 4096, &res, &shared), -EBADMSG);
        assert_int_equal(statm_parse("", 0, 4096, &res, &shared), -EBADMSG);
}

static void test_meminfo(void **state) {
        (void) state;
        uint64_t total, avail;
        const char *t = "MemTotal:       24568320 kB\nMemFree:         1000000 kB\nMemAvailable:   20000000 kB\n";
        assert_int_equal(meminfo_parse(t, strlen(t), &total, &avail), 0);
        assert_true(total == 24568320ULL * 1024);
        assert_true(avail == 20000000ULL * 1024);
        assert_int_equal(meminfo_parse("MemTotal: 5 kB\n", 15, &total, &avail), -EBADMSG);
}

static void test_u64_file(void **state) {
        (void) state;
        uint64_t v;
        assert_int_equal(parse_u64_file("123456\n", 7, &v), 0);
        assert_true(v == 123456);
        assert_int_equal(parse_u64_file("max\n", 4, &v), 0);
        assert_true(v == UINT64_MAX);
        assert_int_equal(parse_u64_file("12 34\n", 6, &v), -EBADMSG);
        assert_int_equal(parse_u64_file("", 0, &v), -EBADMSG);
        assert_int_equal(parse_u64_file("99999999999999999999999", 23, &v), -ERANGE);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_memory_stat_6_1),
                cmocka_unit_test(test_memory_stat_old_kernel_sums_kernel),
                cmocka_unit_test(test_memory_stat_garbage),
                cmocka_unit_test(test_memory_events),
                cmocka_unit_test(test_smaps_rollup),
                cmocka_unit_test(test_statm),
                cmocka_unit_test(test_meminfo),
                cmocka_unit_test(test_u64_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
